// ttt-fuse-elementwise: chains of elementwise primitives -> tttp.fused_elementwise, and the tied
// lm_head + cross-entropy (and, in micro_step, its backward) -> tttp.lm_head_xent(_bwd)
// (Passes.td). Both rewrites are exact: the fused kernels round every step as the unfused
// primitives do; only the lm_head's summation order changes (chunks of the vocabulary).
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

namespace ttt {
#define GEN_PASS_DEF_TTTFUSEELEMENTWISE
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt

using namespace mlir;
using namespace ttt;
namespace p = ttt::prim;

namespace {
ArrayRef<int64_t> shapeOf(Value v) { return cast<ShapedType>(v.getType()).getShape(); }
int64_t countOf(Value v) { return cast<ShapedType>(v.getType()).getNumElements(); }

//===----------------------------------------------------------------------===//
// lm_head + cross-entropy
//===----------------------------------------------------------------------===//

// The backward of one softmax_xent as ttt-autodiff builds it through the VJPs of softmax_xent,
// reshape and the matmul with a broadcast, transposed B:
//   dflat = softmax_xent_bwd(flat, targets, dloss); views of it (reshapes, chains of them)
//   dh = matmul(view, E); dE = matmul(view [N, V], h or reshape(h) [N, D]) {transpose_a}
// and nothing else reads dflat or its views.
struct XentBwdMatch {
  p::SoftmaxXentBwdOp bwd;
  SmallVector<Operation *> views; // the reshapes, in discovery order
  p::MatmulOp dh, dE;
};

std::optional<XentBwdMatch> matchBackward(p::SoftmaxXentBwdOp bwd, Value h, Value table) {
  XentBwdMatch m{bwd, {}, {}, {}};
  const int64_t rows = countOf(h) / shapeOf(h).back(), vocab = shapeOf(table)[0];
  SmallVector<Value> work = {bwd.getResult()};
  while (!work.empty()) {
    Value view = work.pop_back_val();
    for (Operation *user : view.getUsers()) {
      if (auto r = dyn_cast<p::ReshapeOp>(user)) {
        m.views.push_back(r);
        work.push_back(r.getResult());
        continue;
      }
      auto mm = dyn_cast<p::MatmulOp>(user);
      if (!mm || mm.getA() != view || mm.getB() == view || mm.getTransposeB())
        return std::nullopt;
      if (!mm.getTransposeA() && mm.getB() == table && !m.dh && countOf(mm) == countOf(h)) {
        m.dh = mm;
        continue;
      }
      Value hb = mm.getB();
      if (auto r = hb.getDefiningOp<p::ReshapeOp>())
        hb = r.getInput();
      if (mm.getTransposeA() && hb == h && !m.dE && mm.getType() == table.getType() &&
          shapeOf(view) == ArrayRef<int64_t>{rows, vocab}) {
        m.dE = mm;
        continue;
      }
      return std::nullopt;
    }
  }
  if (!m.dh || !m.dE)
    return std::nullopt;
  return m;
}

// flat = reshape(matmul(h, E) {transpose_b}); loss, mask = softmax_xent(flat, targets); every
// other reader of flat a softmax_xent_bwd with the same targets whose backward matches.
void fuseLmHead(p::SoftmaxXentOp sx, int64_t chunk) {
  Value flat = sx.getLogits();
  auto r1 = flat.getDefiningOp<p::ReshapeOp>();
  if (!r1)
    return;
  Value logits3 = r1.getInput();
  auto mm = logits3.getDefiningOp<p::MatmulOp>();
  if (!mm || !logits3.hasOneUse() || mm.getTransposeA() || !mm.getTransposeB())
    return;
  Value h = mm.getA(), table = mm.getB();
  if (shapeOf(table).size() != 2 || mm->getBlock() != sx->getBlock())
    return;
  SmallVector<XentBwdMatch> bwds;
  for (Operation *user : flat.getUsers()) {
    if (user == sx)
      continue;
    auto bwd = dyn_cast<p::SoftmaxXentBwdOp>(user);
    if (!bwd || bwd.getLogits() != flat || bwd.getTargets() != sx.getTargets() ||
        bwd.getIgnoreToken() != sx.getIgnoreToken() || bwd->getBlock() != sx->getBlock())
      return;
    auto m = matchBackward(bwd, h, table);
    if (!m)
      return;
    bwds.push_back(*m);
  }

  OpBuilder b(sx);
  auto vocab = shapeOf(table)[0];
  auto chunkAttr = b.getI64IntegerAttr(std::min<int64_t>(chunk, vocab));
  Type rowType = sx.getLoss().getType();
  auto fwd = b.create<p::LmHeadXentOp>(sx.getLoc(), TypeRange{rowType, rowType, rowType}, h,
                                       table, sx.getTargets(), sx.getIgnoreTokenAttr(),
                                       chunkAttr);
  sx.getLoss().replaceAllUsesWith(fwd.getLoss());
  sx.getMask().replaceAllUsesWith(fwd.getMask());
  for (XentBwdMatch &m : bwds) {
    // At the earlier of the two matmuls (their results' readers all come later); every
    // operand is defined before the softmax_xent_bwd.
    Operation *first = m.dh->isBeforeInBlock(m.dE) ? m.dh.getOperation() : m.dE.getOperation();
    b.setInsertionPoint(first);
    auto fb = b.create<p::LmHeadXentBwdOp>(m.bwd.getLoc(), TypeRange{h.getType(), table.getType()},
                                           h, table, sx.getTargets(), fwd.getLse(),
                                           m.bwd.getDloss(), sx.getIgnoreTokenAttr(), chunkAttr);
    Value dh = fb.getDhidden();
    if (dh.getType() != m.dh.getType())
      dh = b.create<p::ReshapeOp>(m.bwd.getLoc(), m.dh.getType(), dh);
    m.dh.getResult().replaceAllUsesWith(dh);
    m.dE.getResult().replaceAllUsesWith(fb.getDtable());
    Value hb = m.dE.getB();
    m.dE->erase();
    m.dh->erase();
    for (Operation *view : llvm::reverse(m.views))
      view->erase();
    m.bwd->erase();
    if (auto r = hb.getDefiningOp<p::ReshapeOp>(); r && r->use_empty())
      r->erase();
  }
  sx->erase();
  r1->erase();
  mm->erase();
}

//===----------------------------------------------------------------------===//
// Elementwise chains
//===----------------------------------------------------------------------===//

bool isCompute(Operation *op) { return isa<p::BinaryOp, p::UnaryOp, p::UnaryBwdOp>(op); }

// One block: every compute op not yet absorbed (last first) is the root of a group that takes
// in, transitively, the elementwise producers of its operands whose result has one use, the
// root's element count, and whose smaller (broadcast) operands broadcast to the root's shape.
void fuseBlock(Block &block) {
  llvm::DenseSet<Operation *> absorbed;
  struct Group {
    Operation *root;
    llvm::SmallSetVector<Operation *, 8> members;
  };
  SmallVector<Group> groups;
  for (Operation &op : llvm::reverse(block)) {
    if (absorbed.contains(&op) || !isCompute(&op))
      continue;
    Value rootValue = op.getResult(0);
    const int64_t n = countOf(rootValue);
    ArrayRef<int64_t> rootShape = shapeOf(rootValue);
    Group g{&op, {}};
    g.members.insert(&op);
    SmallVector<Operation *> work = {&op};
    while (!work.empty()) {
      Operation *consumer = work.pop_back_val();
      for (Value v : consumer->getOperands()) {
        Operation *producer = v.getDefiningOp();
        if (!producer || producer->getBlock() != &block || absorbed.contains(producer) ||
            g.members.contains(producer) || !v.hasOneUse() || countOf(v) != n ||
            !(isCompute(producer) || isa<p::ReshapeOp>(producer)))
          continue;
        bool broadcastOk = llvm::all_of(producer->getOperands(), [&](Value u) {
          return countOf(u) == n || shapeOf(v) == rootShape;
        });
        if (!broadcastOk)
          continue;
        g.members.insert(producer);
        work.push_back(producer);
      }
    }
    if (g.members.size() < 2)
      continue;
    absorbed.insert(g.members.begin(), g.members.end());
    groups.push_back(std::move(g));
  }

  for (Group &g : groups) {
    SmallVector<Operation *> ordered(g.members.begin(), g.members.end());
    llvm::sort(ordered, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
    llvm::SetVector<Value> inputs;
    for (Operation *op : ordered)
      for (Value v : op->getOperands())
        if (!g.members.contains(v.getDefiningOp()))
          inputs.insert(v);
    llvm::DenseMap<Value, int64_t> slot;
    for (auto [i, v] : llvm::enumerate(inputs))
      slot[v] = int64_t(i);
    SmallVector<Attribute> ops;
    SmallVector<int64_t> args;
    SmallVector<double> alphas;
    MLIRContext *ctx = g.root->getContext();
    auto step = [&](Operation *op, StringRef name, double alpha) {
      ops.push_back(StringAttr::get(ctx, name));
      for (unsigned a = 0; a < 3; ++a)
        args.push_back(a < op->getNumOperands() ? slot.lookup(op->getOperand(a)) : -1);
      alphas.push_back(alpha);
      slot[op->getResult(0)] = int64_t(inputs.size() + alphas.size() - 1);
    };
    for (Operation *op : ordered) {
      if (auto r = dyn_cast<p::ReshapeOp>(op))
        slot[r.getResult()] = slot.lookup(r.getInput()); // a view: same elements, same order
      else if (auto bin = dyn_cast<p::BinaryOp>(op))
        step(op, bin.getKind(), 0.0);
      else if (auto un = dyn_cast<p::UnaryOp>(op))
        step(op, un.getKind(), un.getAlpha().convertToDouble());
      else if (auto ub = dyn_cast<p::UnaryBwdOp>(op))
        step(op, (ub.getKind() + "_bwd").str(), ub.getAlpha().convertToDouble());
    }
    OpBuilder b(g.root);
    auto fused = b.create<p::FusedElementwiseOp>(
        g.root->getLoc(), g.root->getResult(0).getType(), inputs.getArrayRef(),
        b.getArrayAttr(ops), b.getDenseI64ArrayAttr(args), b.getDenseF64ArrayAttr(alphas));
    g.root->getResult(0).replaceAllUsesWith(fused.getResult());
    for (Operation *op : llvm::reverse(ordered))
      op->erase();
  }
}

struct FuseElementwise : public ttt::impl::TTTFuseElementwiseBase<FuseElementwise> {
  using TTTFuseElementwiseBase::TTTFuseElementwiseBase;

  void runOnOperation() override {
    if (lmHead) {
      SmallVector<p::SoftmaxXentOp> xents;
      getOperation()->walk([&](p::SoftmaxXentOp sx) { xents.push_back(sx); });
      for (p::SoftmaxXentOp sx : xents)
        fuseLmHead(sx, chunk);
    }
    SmallVector<Block *> blocks;
    getOperation()->walk([&](p::ProgramOp program) {
      program->walk([&](Block *b) { blocks.push_back(b); });
    });
    for (Block *b : blocks)
      fuseBlock(*b);
  }
};
} // namespace
