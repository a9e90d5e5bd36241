// ttt-fuse-inner-loop: the inner loop's scans -> tttp.inner_loop_fwd / tttp.inner_loop_bwd
// (Passes.td). A scan is recognized only if its structure is exactly what ttt-expand and
// ttt-autodiff build; its step body is compared op by op with the dual-form step emitted afresh
// (DualFormStep.h). Anything else is left as it is.
#include "DualFormStep.h"
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"

#include <optional>

namespace ttt {
#define GEN_PASS_DEF_TTTFUSEINNERLOOP
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt

using namespace mlir;
using namespace ttt;
namespace p = ttt::prim;

namespace {
using dualform::Shape;
using dualform::shapeOf;

RankedTensorType withShape(Value v, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, cast<ShapedType>(v.getType()).getElementType());
}
bool sameValues(ValueRange a, ValueRange b) {
  return a.size() == b.size() && llvm::equal(a, b);
}

// The step's closure values by role (the template's arguments after the six step arguments).
enum Role { kGamma, kLambda, kTauCol, kTauLast, kOnes, kZeros, kRoles };

struct StepMatch {
  std::array<Value, kRoles> roles;
  double eps = 0;
  SmallVector<Value, 3> yields; // (W', b', out) in the matched body
  Operation *after = nullptr;   // the first op of the body after the step's ops
};

bool isConstant(Value v, double value) {
  auto c = v.getDefiningOp<p::ConstantOp>();
  return c && c.getValue().convertToDouble() == value;
}

// Does `body` start with the dual-form step on `args` = (W, b, Q, K, V, eta)? The step is emitted
// into a scratch block for these shapes and the body's leading ops must be that step's ops in
// order: same op names, attributes and result types, operands wired the same way, closure values
// from outside the body. Template ops may be missing (ttt-autodiff drops the recomputed ops it
// does not need), but no op may read a missing one; the caller checks that what the body yields
// is the step's. A closure role stays null if no present op reads it.
std::optional<StepMatch> matchStep(Block &body, ArrayRef<Value> args,
                                   std::optional<double> eps = std::nullopt) {
  if (args.size() != 6)
    return std::nullopt;
  Shape ws = shapeOf(args[0]), qs = shapeOf(args[2]);
  if (ws.size() != 4 || qs.size() != 4 || ws[2] != ws[3])
    return std::nullopt;
  const int64_t B = ws[0], H = ws[1], f = ws[3], mb = qs[2];
  Type elem = cast<ShapedType>(args[0].getType()).getElementType();
  auto type = [&](ArrayRef<int64_t> s) { return RankedTensorType::get(s, elem); };
  if (args[1].getType() != type({B, H, f}) || args[2].getType() != type({B, H, mb, f}) ||
      args[3].getType() != args[2].getType() || args[4].getType() != args[2].getType() ||
      args[5].getType() != type({B, H, mb}))
    return std::nullopt;
  for (auto ln : body.getOps<p::LayerNormOp>()) {
    if (eps)
      break;
    eps = ln.getEps().convertToDouble();
    break;
  }
  if (!eps)
    return std::nullopt;

  MLIRContext *ctx = body.getParentOp()->getContext();
  Location loc = UnknownLoc::get(ctx);
  auto scratch = std::make_unique<Block>();
  for (Value a : args)
    scratch->addArgument(a.getType(), loc);
  for (Shape s : {Shape{H, 1, f}, Shape{H, 1, f}, Shape{mb, 1}, Shape{}, Shape{f}, Shape{f}})
    scratch->addArgument(type(s), loc);
  OpBuilder tb(ctx);
  tb.setInsertionPointToEnd(scratch.get());
  dualform::Emitter e{tb, loc, elem, {}};
  auto sa = scratch->getArguments();
  dualform::StepClosure closure{sa[6], sa[7], sa[8], sa[9], sa[10], sa[11]};
  SmallVector<Value, 3> tyields =
      dualform::emitDualFormStep(e, sa[0], sa[1], sa[2], sa[3], sa[4], sa[5], closure, *eps);

  StepMatch m;
  m.eps = *eps;
  llvm::DenseMap<Value, Value> t2r;
  for (size_t i = 0; i < 6; ++i)
    t2r[sa[i]] = args[i];
  bool ok = true;
  Block::iterator it = body.begin();
  for (Operation &t : *scratch) {
    if (it == body.end() || it->hasTrait<OpTrait::IsTerminator>())
      break; // the rest of the template is missing
    Operation &r = *it;
    bool same = r.getName() == t.getName() && r.getAttrDictionary() == t.getAttrDictionary() &&
                r.getNumOperands() == t.getNumOperands() &&
                r.getNumResults() == t.getNumResults() && r.getNumRegions() == 0 &&
                r.getResultTypes() == t.getResultTypes();
    llvm::SmallVector<std::pair<unsigned, Value>> binds;
    for (auto [tv, rv] : llvm::zip(t.getOperands(), r.getOperands())) {
      if (!same)
        break;
      auto found = t2r.find(tv);
      if (found != t2r.end()) {
        same = found->second == rv;
        continue;
      }
      auto arg = dyn_cast<BlockArgument>(tv);
      // A closure value: the first use binds it; it must come from outside the body.
      same = arg && arg.getOwner() == scratch.get() && arg.getArgNumber() >= 6 &&
             rv.getType() == tv.getType() && !body.getParent()->isAncestor(rv.getParentRegion());
      if (same)
        binds.push_back({arg.getArgNumber(), rv});
    }
    if (!same)
      continue; // a template op that is not in the body
    for (auto [n, rv] : binds) {
      t2r[scratch->getArgument(n)] = rv;
      m.roles[n - 6] = rv;
    }
    for (auto [tr, rr] : llvm::zip(t.getResults(), r.getResults()))
      t2r[tr] = rr;
    ++it;
  }
  // Every op before `it` is a template op; none may read a value of the body the template
  // does not account for (checked above through t2r); those after it must not be step ops.
  for (Value y : tyields)
    m.yields.push_back(t2r.lookup(y)); // null where the template op is missing
  m.after = it == body.end() ? nullptr : &*it;
  scratch->dropAllDefinedValueUses();
  for (Operation &op : llvm::make_early_inc_range(llvm::reverse(*scratch)))
    op.erase();
  if (!ok || (m.roles[kOnes] && !isConstant(m.roles[kOnes], 1.0)) ||
      (m.roles[kZeros] && !isConstant(m.roles[kZeros], 0.0)))
    return std::nullopt;
  return m;
}

// The roles `part` binds are those of `whole`.
bool sameRoles(const StepMatch &part, const StepMatch &whole) {
  for (int r = 0; r < kRoles; ++r)
    if (part.roles[r] && part.roles[r] != whole.roles[r])
      return false;
  return true;
}

// ... and nothing else: the body is the step followed by `yield (W', b', out)`.
std::optional<StepMatch> matchWholeStep(Block &body, ArrayRef<Value> args) {
  std::optional<StepMatch> m = matchStep(body, args);
  if (!m || !m->after || !isa<p::YieldOp>(m->after) ||
      llvm::any_of(m->yields, [](Value v) { return !v; }) ||
      llvm::any_of(m->roles, [](Value v) { return !v; }) ||
      !sameValues(m->after->getOperands(), m->yields))
    return std::nullopt;
  return m;
}

// A recognized forward inner loop: a plain scan (eval_step) or the grouped scan of ttt-autodiff
// (an outer scan over groups of k steps whose body is the inner scan, yielding the group's start
// carry as the checkpoints).
struct Forward {
  p::ScanOp scan;
  p::ScanOp inner; // grouped only
  int64_t n = 0, k = 0;
  StepMatch step;
  bool cache = false;      // returns the inner-loop cache (its backward reads it)
  p::InnerLoopFwdOp fused; // the op that replaced it
};

std::optional<Forward> matchForward(p::ScanOp s) {
  if (s.getReverse() || s.getInits().size() != 2 || s.getXs().size() != 4)
    return std::nullopt;
  Block &body = s.getBody().front();
  auto args = body.getArguments();
  Forward f;
  f.scan = s;
  if (s.getNumResults() == 3) { // plain
    f.n = s.getCount();
    f.k = f.n;
    std::optional<StepMatch> m = matchWholeStep(body, SmallVector<Value>(args.begin(), args.end()));
    if (!m)
      return std::nullopt;
    f.step = *m;
    return f;
  }
  if (s.getNumResults() != 5 || body.getOperations().size() != 2)
    return std::nullopt;
  auto inner = dyn_cast<p::ScanOp>(body.front());
  auto yield = dyn_cast<p::YieldOp>(body.back());
  if (!inner || !yield || inner.getReverse() || inner.getNumResults() != 3 ||
      !sameValues(inner.getInits(), args.take_front(2)) ||
      !sameValues(inner.getXs(), args.drop_front(2)))
    return std::nullopt;
  SmallVector<Value> want(inner.getResults());
  want.append({args[0], args[1]});
  if (!sameValues(yield.getValues(), want))
    return std::nullopt;
  Block &ib = inner.getBody().front();
  std::optional<StepMatch> m =
      matchWholeStep(ib, SmallVector<Value>(ib.getArguments().begin(), ib.getArguments().end()));
  if (!m)
    return std::nullopt;
  f.inner = inner;
  f.k = inner.getCount();
  f.n = s.getCount() * f.k;
  f.step = *m;
  return f;
}

// Depends on a parameter (ttt-autodiff's activity: only these get cotangents).
struct Activity {
  llvm::DenseMap<Value, bool> memo;
  bool operator()(Value v) {
    if (!isa<FloatType>(cast<ShapedType>(v.getType()).getElementType()))
      return false;
    auto it = memo.find(v);
    if (it != memo.end())
      return it->second;
    bool result = false;
    if (Operation *def = v.getDefiningOp()) {
      if (isa<p::ParamOp>(def))
        result = true;
      else if (!isa<p::ConstantOp, p::IotaOp, p::InputOp>(def))
        result = llvm::any_of(def->getOperands(), [&](Value o) { return (*this)(o); });
    }
    memo[v] = result;
    return result;
  }
};

// The reversed scan ttt-autodiff builds for a grouped forward: carried (dW, db, one accumulator
// per active closure value), scanned (checkpoints, grouped inputs, grouped d(out)); its body
// recomputes the group forward (a scan yielding each step's start carry) then runs the reversed
// step scan whose body starts with the step recomputed.
struct Backward {
  p::ScanOp scan;
  Forward *forward;
  SmallVector<Role> accumulators; // the role of each closure accumulator
};

std::optional<Backward> matchBackward(p::ScanOp s, llvm::DenseMap<Operation *, Forward> &fwds,
                                      Activity &active) {
  if (!s.getReverse() || s.getXs().size() != 7)
    return std::nullopt;
  auto ck = dyn_cast<OpResult>(s.getXs()[0]);
  if (!ck || ck.getResultNumber() != 3 || s.getXs()[1] != ck.getOwner()->getResult(4))
    return std::nullopt;
  auto found = fwds.find(ck.getOwner());
  if (found == fwds.end() || !found->second.inner)
    return std::nullopt;
  Forward &f = found->second;
  if (!sameValues(s.getXs().slice(2, 4), f.scan.getXs()) ||
      s.getXs()[6].getType() != f.scan.getResult(2).getType())
    return std::nullopt;

  // The accumulators follow the forward body's closure, active values only, in first-use order.
  llvm::SetVector<Value> closure;
  Region &ib = f.inner.getBody();
  ib.walk([&](Operation *op) {
    for (Value v : op->getOperands())
      if (!ib.isAncestor(v.getParentRegion()))
        closure.insert(v);
  });
  Backward bw{s, &f, {}};
  SmallVector<Value> accValues;
  for (Value v : closure) {
    if (!active(v))
      continue;
    auto role = llvm::find(f.step.roles, v);
    if (role == f.step.roles.end() || *role == f.step.roles[kOnes] || *role == f.step.roles[kZeros])
      return std::nullopt;
    bw.accumulators.push_back(Role(role - f.step.roles.begin()));
    accValues.push_back(v);
  }
  const size_t nc = accValues.size();
  if (s.getInits().size() != 2 + nc || s.getNumResults() != 2 + nc + 4 ||
      s.getInits()[0].getType() != f.scan.getResult(0).getType() ||
      s.getInits()[1].getType() != f.scan.getResult(1).getType())
    return std::nullopt;
  for (size_t c = 0; c < nc; ++c)
    if (s.getInits()[2 + c].getType() != accValues[c].getType() ||
        !isConstant(s.getInits()[2 + c], 0.0))
      return std::nullopt;

  Block &body = s.getBody().front();
  auto args = body.getArguments();
  if (body.getOperations().size() != 3)
    return std::nullopt;
  auto fwd = dyn_cast<p::ScanOp>(body.front());
  auto step = dyn_cast<p::ScanOp>(*std::next(body.begin()));
  auto yield = dyn_cast<p::YieldOp>(body.back());
  if (!fwd || !step || !yield || !sameValues(yield.getValues(), step.getResults()))
    return std::nullopt;
  ValueRange dcz = args.take_front(2 + nc), ckpt = args.slice(2 + nc, 2),
             xg = args.slice(4 + nc, 4), dyg = args.slice(8 + nc, 1);
  // (a) the group's forward, yielding the start carry of each step.
  if (fwd.getReverse() || !sameValues(fwd.getInits(), ckpt) || !sameValues(fwd.getXs(), xg) ||
      fwd.getNumResults() != 4)
    return std::nullopt;
  Block &fb = fwd.getBody().front();
  std::optional<StepMatch> fm = matchStep(
      fb, SmallVector<Value>(fb.getArguments().begin(), fb.getArguments().end()), f.step.eps);
  if (!fm || !sameRoles(*fm, f.step) || !fm->after || !isa<p::YieldOp>(fm->after) ||
      !fm->yields[0] || !fm->yields[1] ||
      !sameValues(fm->after->getOperands(),
                  {fm->yields[0], fm->yields[1], fb.getArgument(0), fb.getArgument(1)}))
    return std::nullopt;
  // (b) the reversed steps: the step recomputed on (start carry, inputs), then its VJP.
  SmallVector<Value> stepXs(fwd.getResults().drop_front(2));
  stepXs.append(xg.begin(), xg.end());
  stepXs.append(dyg.begin(), dyg.end());
  if (!step.getReverse() || !sameValues(step.getInits(), dcz) ||
      !sameValues(step.getXs(), stepXs) || step.getNumResults() != 2 + nc + 4)
    return std::nullopt;
  Block &sb = step.getBody().front();
  SmallVector<Value> stepArgs(sb.getArguments().slice(2 + nc, 6));
  // The VJP follows; the step's (W', b', out) were recomputed to be differentiated, so the
  // carried update at least (its matmuls' operands are read by their rules) is there.
  std::optional<StepMatch> sm = matchStep(sb, stepArgs, f.step.eps);
  if (!sm || !sameRoles(*sm, f.step) || !sm->roles[kGamma] || !sm->roles[kTauLast])
    return std::nullopt;
  return bw;
}

// Reshape `v` to `shape`, looking through a reshape that came from that shape.
Value reshapeTo(OpBuilder &b, Value v, ArrayRef<int64_t> shape) {
  if (shapeOf(v) == Shape(shape.begin(), shape.end()))
    return v;
  if (auto r = v.getDefiningOp<p::ReshapeOp>())
    if (shapeOf(r.getInput()) == Shape(shape.begin(), shape.end()))
      return r.getInput();
  return b.create<p::ReshapeOp>(v.getLoc(), withShape(v, shape), v);
}

struct Operands {
  Value q, k, v, eta, tau, tauLast, gamma, lambda;
};
Operands commonOperands(OpBuilder &b, Forward &f) {
  Block &body = (f.inner ? f.inner : f.scan).getBody().front();
  Shape qs = shapeOf(body.getArgument(2)), es = shapeOf(body.getArgument(5)); // [B,H,b,f], [B,H,b]
  const int64_t H = qs[1], mb = qs[2], hd = qs[3];
  qs.insert(qs.begin(), f.n);
  es.insert(es.begin(), f.n);
  ValueRange xs = f.scan.getXs();
  auto &r = f.step.roles;
  return {reshapeTo(b, xs[0], qs),          reshapeTo(b, xs[1], qs),
          reshapeTo(b, xs[2], qs),          reshapeTo(b, xs[3], es),
          reshapeTo(b, r[kTauCol], {mb}),   r[kTauLast],
          reshapeTo(b, r[kGamma], {H, hd}), reshapeTo(b, r[kLambda], {H, hd})};
}

void rewriteForward(Forward &f) {
  OpBuilder b(f.scan);
  Location loc = f.scan.getLoc();
  Operands o = commonOperands(b, f);
  Value W0 = f.scan.getInits()[0], b0 = f.scan.getInits()[1];
  const int64_t groups = f.n / f.k;
  Shape cw = shapeOf(W0), cb = shapeOf(b0);
  cw.insert(cw.begin(), groups);
  cb.insert(cb.begin(), groups);
  SmallVector<Type> types = {W0.getType(), b0.getType(), o.q.getType(), withShape(W0, cw),
                             withShape(b0, cb)};
  if (f.cache) {
    Shape qs = shapeOf(o.q); // [n, B, H, b, f]
    types.push_back(withShape(W0, {qs[0], qs[1], qs[2], p::innerLoopCacheFloats(qs[3], qs[4])}));
  }
  auto fused = b.create<p::InnerLoopFwdOp>(
      loc, types, W0, b0, o.q, o.k, o.v, o.eta, o.tau, o.tauLast, o.gamma, o.lambda,
      b.getF64FloatAttr(f.step.eps), b.getI64IntegerAttr(f.k), /*token_major=*/UnitAttr());
  f.fused = fused;
  f.scan.getResult(0).replaceAllUsesWith(fused.getWFinal());
  f.scan.getResult(1).replaceAllUsesWith(fused.getBFinal());
  f.scan.getResult(2).replaceAllUsesWith(
      reshapeTo(b, fused.getO(), shapeOf(f.scan.getResult(2))));
  if (f.inner) {
    f.scan.getResult(3).replaceAllUsesWith(fused.getCkptW());
    f.scan.getResult(4).replaceAllUsesWith(fused.getCkptB());
  }
}

void rewriteBackward(Backward &bw) {
  Forward &f = *bw.forward;
  p::ScanOp s = bw.scan;
  OpBuilder b(s);
  Operands o = commonOperands(b, f); // the forward's inputs (the forward is rewritten already)
  ValueRange xs = s.getXs();
  Value dO = reshapeTo(b, xs[6], shapeOf(o.q));
  auto fused = b.create<p::InnerLoopBwdOp>(
      s.getLoc(),
      TypeRange{s.getInits()[0].getType(), s.getInits()[1].getType(), o.q.getType(), o.k.getType(),
                o.v.getType(), o.eta.getType(), o.tau.getType(), o.tauLast.getType(),
                o.gamma.getType(), o.lambda.getType()},
      xs[0], xs[1], o.q, o.k, o.v, o.eta, o.tau, o.tauLast, o.gamma, o.lambda, s.getInits()[0],
      s.getInits()[1], dO, f.cache ? f.fused.getCache() : Value(), b.getF64FloatAttr(f.step.eps),
      b.getI64IntegerAttr(f.k), /*token_major=*/UnitAttr());
  s.getResult(0).replaceAllUsesWith(fused.getDw0());
  s.getResult(1).replaceAllUsesWith(fused.getDb0());
  const size_t nc = bw.accumulators.size();
  for (size_t c = 0; c < nc; ++c) {
    Value d;
    switch (bw.accumulators[c]) {
    case kGamma: d = fused.getDgamma(); break;
    case kLambda: d = fused.getDlambda(); break;
    case kTauCol: d = fused.getDtau(); break;
    case kTauLast: d = fused.getDtauLast(); break;
    default: llvm_unreachable("inactive role");
    }
    Value r = s.getResult(2 + c);
    r.replaceAllUsesWith(reshapeTo(b, d, shapeOf(r)));
  }
  Value dxs[4] = {fused.getDq(), fused.getDk(), fused.getDv(), fused.getDeta()};
  for (size_t j = 0; j < 4; ++j) {
    Value r = s.getResult(2 + nc + j);
    r.replaceAllUsesWith(reshapeTo(b, dxs[j], shapeOf(r)));
  }
}

// reshape(reshape(x)) -> reshape(x) (or x), then pure ops without uses are dropped.
void cleanup(Block &block) {
  for (auto r : llvm::make_early_inc_range(block.getOps<p::ReshapeOp>())) {
    auto inner = r.getInput().getDefiningOp<p::ReshapeOp>();
    if (!inner)
      continue;
    if (inner.getInput().getType() == r.getType()) {
      r.getResult().replaceAllUsesWith(inner.getInput());
      r.erase();
    } else {
      r.getInputMutable().assign(inner.getInput());
    }
  }
  bool changed = true;
  while (changed) {
    changed = false;
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(block)))
      if (op.use_empty() && op.getNumResults() > 0 && isPure(&op)) {
        op.erase();
        changed = true;
      }
  }
}

// --- the projections' layout ---------------------------------------------------------------
// ttt-expand hands the inner loop q, k, v, eta as transposes of the projections' [B, n, b, H, f]
// (eta [B, n, b, H]) into [n, B, H, b, f] ([n, B, H, b]), and takes its outputs back the same
// way. The same permutation both ways (it swaps two pairs of axes).
bool isLayoutSwap(Operation *op) {
  auto t = dyn_cast_or_null<p::TransposeOp>(op);
  if (!t)
    return false;
  ArrayRef<int64_t> perm = t.getPerm();
  return perm == ArrayRef<int64_t>{1, 0, 3, 2, 4} || perm == ArrayRef<int64_t>{1, 0, 3, 2};
}

// A fused op whose layout-carrying operands (`ins`) are all such transposes and whose
// layout-carrying results (`outs`) are read only by such transposes becomes the same op with
// `token_major`, reading the transposes' sources and standing in for the transposes of its
// results. The transposes that nothing reads any more are erased by the caller's cleanup.
void foldLayoutSwaps(Operation *op, ArrayRef<unsigned> ins, ArrayRef<unsigned> outs) {
  if (op->hasAttr("token_major"))
    return;
  for (unsigned i : ins)
    if (!isLayoutSwap(op->getOperand(i).getDefiningOp()))
      return;
  for (unsigned r : outs)
    for (Operation *user : op->getResult(r).getUsers())
      if (!isLayoutSwap(user))
        return;
  SmallVector<Value> operands(op->getOperands());
  for (unsigned i : ins)
    operands[i] = op->getOperand(i).getDefiningOp()->getOperand(0);
  SmallVector<Type> types(op->getResultTypes());
  for (unsigned r : outs) {
    auto t = cast<RankedTensorType>(types[r]);
    SmallVector<int64_t> shape(t.getShape());
    std::swap(shape[0], shape[1]);
    std::swap(shape[2], shape[3]);
    types[r] = t.clone(shape);
  }
  OpBuilder b(op);
  OperationState state(op->getLoc(), op->getName(), operands, types, op->getAttrs());
  state.addAttribute("token_major", b.getUnitAttr());
  Operation *folded = b.create(state);
  for (unsigned r = 0; r < op->getNumResults(); ++r) {
    if (!llvm::is_contained(outs, r)) {
      op->getResult(r).replaceAllUsesWith(folded->getResult(r));
      continue;
    }
    for (Operation *user : llvm::make_early_inc_range(op->getResult(r).getUsers())) {
      user->getResult(0).replaceAllUsesWith(folded->getResult(r));
      user->erase();
    }
  }
  op->erase();
}

void eraseDeadSwaps(Block &block) {
  for (Operation &op : llvm::make_early_inc_range(llvm::reverse(block)))
    if (isLayoutSwap(&op) && op.use_empty())
      op.erase();
}

struct FuseInnerLoop : ttt::impl::TTTFuseInnerLoopBase<FuseInnerLoop> {
  using TTTFuseInnerLoopBase::TTTFuseInnerLoopBase;

  void runOnOperation() override {
    for (auto program : getOperation().getOps<p::ProgramOp>()) {
      Block &block = program.getBody().front();
      llvm::DenseMap<Operation *, Forward> fwds;
      SmallVector<Operation *> order;
      for (auto scan : block.getOps<p::ScanOp>())
        if (std::optional<Forward> f = matchForward(scan)) {
          fwds[scan] = *f;
          order.push_back(scan);
        }
      Activity active;
      SmallVector<Backward> bwds;
      for (auto scan : block.getOps<p::ScanOp>())
        if (std::optional<Backward> bw = matchBackward(scan, fwds, active))
          bwds.push_back(*bw);
      // The cache only where the GPU's tensor-core kernels run: mini-batch 16, head dim 64 or
      // 96, f32 (Kernels.h, innerLoopTensorCoreSupports).
      if (cache)
        for (Backward &bw : bwds) {
          Forward &f = *bw.forward;
          Block &body = (f.inner ? f.inner : f.scan).getBody().front();
          Value q = body.getArgument(2); // [B, H, b, f]
          Shape qs = shapeOf(q);
          auto elem = cast<ShapedType>(q.getType()).getElementType();
          f.cache = elem.isF32() && qs[2] == 16 && (qs[3] == 64 || qs[3] == 96);
        }
      for (Operation *op : order)
        rewriteForward(fwds[op]);
      for (Backward &bw : bwds)
        rewriteBackward(bw);
      for (Backward &bw : bwds)
        bw.scan.erase();
      for (Operation *op : order) {
        assert(op->use_empty() && "a fused forward's results are all replaced");
        op->erase();
      }
      cleanup(block);
      // Forward: q, k, v, eta in, o out; backward: q, k, v, eta, do in, dq, dk, dv, deta out.
      for (auto fwd : llvm::make_early_inc_range(block.getOps<p::InnerLoopFwdOp>()))
        foldLayoutSwaps(fwd, {2, 3, 4, 5}, {2});
      for (auto bwd : llvm::make_early_inc_range(block.getOps<p::InnerLoopBwdOp>()))
        foldLayoutSwaps(bwd, {2, 3, 4, 5, 12}, {2, 3, 4, 5});
      eraseDeadSwaps(block);
    }
  }
};
} // namespace
