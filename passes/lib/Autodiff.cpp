// ttt-autodiff: eval_step -> micro_step (forward, loss, backward) by reverse mode over the
// primitives' VJP rules; scans are reversed generically with rematerialization (Passes.td).
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"

namespace ttt {
#define GEN_PASS_DEF_TTTAUTODIFF
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt

using namespace mlir;
using namespace ttt;
namespace p = ttt::prim;

namespace {
using Shape = SmallVector<int64_t>;
Shape shapeOf(Value v) {
  ArrayRef<int64_t> s = cast<ShapedType>(v.getType()).getShape();
  return Shape(s.begin(), s.end());
}
RankedTensorType withShape(Value v, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, cast<ShapedType>(v.getType()).getElementType());
}
bool isFloat(Value v) { return isa<FloatType>(cast<ShapedType>(v.getType()).getElementType()); }

// What the backward of one forward scan needs: its original op (for the body) and, in the
// rewritten forward, the grouped inputs and the carried state at every group start.
struct ScanRecord {
  p::ScanOp original;
  int64_t group; // mini-batches per rematerialization group
  SmallVector<Value> inits, groupedXs, checkpoints;
};

class Autodiff {
public:
  Autodiff(OpBuilder &b, Location loc, int64_t group) : b(b), loc(loc), group(group) {}

  // --- activity: does a value depend on a parameter? ----------------------------------------
  bool isActive(Value v) {
    if (!isFloat(v))
      return false;
    auto it = active.find(v);
    if (it != active.end())
      return it->second;
    bool result = false;
    if (Operation *def = v.getDefiningOp()) {
      if (isa<p::ParamOp>(def))
        result = true;
      else if (isa<p::ConstantOp, p::IotaOp, p::InputOp>(def))
        result = false;
      else
        result = llvm::any_of(def->getOperands(), [&](Value o) { return isActive(o); });
    }
    active[v] = result; // block arguments are registered when their blocks are made
    return result;
  }

  Value zeros(Value like) {
    return b.create<p::ConstantOp>(loc, like.getType(), b.getF64FloatAttr(0.0));
  }
  Value reshape(Value x, ArrayRef<int64_t> shape) {
    if (shapeOf(x) == Shape(shape.begin(), shape.end()))
      return x;
    return b.create<p::ReshapeOp>(loc, withShape(x, shape), x);
  }

  // --- forward: clone, rewriting each scan into groups that keep their start carry ------------
  LogicalResult cloneForward(Block &src, IRMapping &map) {
    for (Operation &op : src) {
      // The loss output is re-emitted by the caller; others (state passing's "state_out:*")
      // stay outputs of micro_step.
      if (auto out = dyn_cast<p::OutputOp>(op); out && out.getName() == "loss")
        continue;
      if (auto scan = dyn_cast<p::ScanOp>(op)) {
        if (failed(cloneScanGrouped(scan, map)))
          return failure();
        continue;
      }
      b.clone(op, map);
    }
    return success();
  }

  // scan over n  ==>  scan over n/k groups { scan over k } with the group's start carry stacked.
  LogicalResult cloneScanGrouped(p::ScanOp scan, IRMapping &map) {
    int64_t n = scan.getCount(), k = std::min<int64_t>(group, n);
    if (n % k != 0)
      return scan.emitOpError() << "count " << n << " is not a multiple of the remat group " << k;
    int64_t groups = n / k;
    ScanRecord rec{scan, k, {}, {}, {}};
    for (Value init : scan.getInits())
      rec.inits.push_back(map.lookup(init));
    for (Value x : scan.getXs()) {
      Shape s = shapeOf(x);
      s[0] = k;
      s.insert(s.begin(), groups);
      rec.groupedXs.push_back(reshape(map.lookup(x), s));
    }
    size_t carried = scan.getInits().size();
    Block &body = scan.getBody().front();
    auto yield = cast<p::YieldOp>(body.getTerminator());
    // Result types of the outer scan: finals, grouped ys, then the checkpoints.
    SmallVector<Type> outerTypes;
    for (size_t i = 0; i < carried; ++i)
      outerTypes.push_back(scan.getResult(i).getType());
    for (size_t j = carried; j < scan.getNumResults(); ++j) {
      Shape s = shapeOf(yield.getValues()[j]);
      s.insert(s.begin(), k);
      s.insert(s.begin(), groups);
      outerTypes.push_back(withShape(scan.getResult(j), s));
    }
    for (Value init : rec.inits) {
      Shape s = shapeOf(init);
      s.insert(s.begin(), groups);
      outerTypes.push_back(withShape(init, s));
    }
    auto outer = b.create<p::ScanOp>(loc, outerTypes, rec.inits, rec.groupedXs, false);
    Block *ob = b.createBlock(&outer.getBody());
    for (Value init : rec.inits)
      ob->addArgument(init.getType(), loc);
    for (Value x : rec.groupedXs)
      ob->addArgument(withShape(x, ArrayRef<int64_t>(shapeOf(x)).drop_front()), loc);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToEnd(ob);
      SmallVector<Value> innerInits(ob->getArguments().take_front(carried));
      SmallVector<Value> innerXs(ob->getArguments().drop_front(carried));
      SmallVector<Type> innerTypes;
      for (size_t i = 0; i < scan.getNumResults(); ++i) {
        Shape s = shapeOf(scan.getResult(i));
        if (i >= carried)
          s[0] = k;
        innerTypes.push_back(withShape(scan.getResult(i), s));
      }
      auto inner = b.create<p::ScanOp>(loc, innerTypes, innerInits, innerXs, false);
      IRMapping bodyMap = map; // the body's closure values are the program's, mapped
      scan.getBody().cloneInto(&inner.getBody(), bodyMap);
      SmallVector<Value> yields(inner.getResults());
      for (Value c : innerInits)
        yields.push_back(c); // the carry at the group start: the checkpoint
      b.create<p::YieldOp>(loc, yields);
    }
    b.setInsertionPointAfter(outer);
    for (size_t i = 0; i < carried; ++i)
      map.map(scan.getResult(i), outer.getResult(i));
    for (size_t j = carried; j < scan.getNumResults(); ++j)
      map.map(scan.getResult(j), reshape(outer.getResult(j), shapeOf(scan.getResult(j))));
    for (size_t i = 0; i < carried; ++i)
      rec.checkpoints.push_back(outer.getResult(scan.getNumResults() + i));
    records[outer] = rec;
    for (Value r : outer.getResults())
      active[r] = true;
    return success();
  }

  // --- backward ------------------------------------------------------------------------------
  using Cotangents = llvm::DenseMap<Value, Value>;

  void accumulate(Cotangents &cot, Value v, Value d) {
    if (!d || !isActive(v))
      return;
    auto it = cot.find(v);
    if (it == cot.end())
      cot[v] = d;
    else
      it->second = b.create<p::BinaryOp>(loc, v.getType(), it->second, d, "add");
  }

  // Reverse mode over `ops` (in forward order), reading and extending `cot`.
  LogicalResult backward(ArrayRef<Operation *> ops, Cotangents &cot) {
    for (Operation *op : llvm::reverse(ops)) {
      SmallVector<Value> dres;
      bool any = false;
      for (Value r : op->getResults()) {
        Value d = cot.lookup(r);
        dres.push_back(d);
        any |= bool(d);
      }
      if (!any)
        continue;
      if (auto scan = dyn_cast<p::ScanOp>(op)) {
        if (failed(backwardScan(scan, dres, cot)))
          return failure();
        continue;
      }
      if (isa<p::ParamOp>(op))
        continue;
      auto vjp = dyn_cast<p::VJPOpInterface>(op);
      if (!vjp)
        return op->emitOpError() << "has no VJP rule";
      for (Value &d : dres)
        if (!d && !op->getResults().empty())
          d = zeros(op->getResult(&d - dres.data()));
      SmallVector<Value> dops;
      if (failed(vjp.buildVJP(b, dres, dops)))
        return failure();
      for (auto [operand, d] : llvm::zip(op->getOperands(), dops))
        accumulate(cot, operand, d);
    }
    return success();
  }

  // The values a scan body reads from outside the scan.
  static SmallVector<Value> closureOf(p::ScanOp scan) {
    llvm::SetVector<Value> closure;
    scan.getBody().walk([&](Operation *op) {
      for (Value v : op->getOperands())
        if (!scan.getBody().isAncestor(v.getParentRegion()))
          closure.insert(v);
    });
    return closure.takeVector();
  }

  LogicalResult backwardScan(p::ScanOp outer, ArrayRef<Value> dres, Cotangents &cot) {
    auto found = records.find(outer);
    if (found == records.end())
      return outer.emitOpError() << "was not prepared for reversal";
    ScanRecord &rec = found->second;
    p::ScanOp scan = rec.original;
    const size_t carried = rec.inits.size();
    const size_t nys = scan.getNumResults() - carried;
    const int64_t k = rec.group;
    Block &body = scan.getBody().front();

    // The body reads the forward program's values; in micro_step they are their clones.
    SmallVector<Value> closure;
    for (Value v : closureOf(scan))
      if (isActive(forwardMap.lookupOrDefault(v)))
        closure.push_back(forwardMap.lookupOrDefault(v));

    // Carried cotangents: d(finals) (zeros if unused) and the closure accumulators.
    SmallVector<Value> inits;
    for (size_t i = 0; i < carried; ++i)
      inits.push_back(dres[i] ? dres[i] : zeros(outer.getResult(i)));
    for (Value c : closure)
      inits.push_back(zeros(c));
    // Scanned: checkpoints, grouped inputs, grouped ys cotangents.
    SmallVector<Value> xs(rec.checkpoints.begin(), rec.checkpoints.end());
    xs.append(rec.groupedXs.begin(), rec.groupedXs.end());
    for (size_t j = 0; j < nys; ++j) {
      Value d = dres[carried + j] ? dres[carried + j] : zeros(outer.getResult(carried + j));
      xs.push_back(d);
    }
    SmallVector<Type> types;
    for (Value v : inits)
      types.push_back(v.getType());
    for (Value x : rec.groupedXs)
      types.push_back(x.getType());
    auto rev = b.create<p::ScanOp>(loc, types, inits, xs, /*reverse=*/true);
    Block *rb = b.createBlock(&rev.getBody());
    for (Value v : inits)
      active[rb->addArgument(v.getType(), loc)] = true;
    for (Value x : xs)
      active[rb->addArgument(withShape(x, ArrayRef<int64_t>(shapeOf(x)).drop_front()), loc)] =
          true;
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToEnd(rb);
      auto args = rb->getArguments();
      SmallVector<Value> dc(args.begin(), args.begin() + carried);
      SmallVector<Value> dz(args.begin() + carried, args.begin() + carried + closure.size());
      size_t at = carried + closure.size();
      SmallVector<Value> ckpt(args.begin() + at, args.begin() + at + carried);
      at += carried;
      SmallVector<Value> xg(args.begin() + at, args.begin() + at + rec.groupedXs.size());
      at += rec.groupedXs.size();
      SmallVector<Value> dyg(args.begin() + at, args.end());

      // (a) recompute the group forward, keeping the carry at every step start.
      SmallVector<Type> fwdTypes;
      for (Value c : ckpt)
        fwdTypes.push_back(c.getType());
      for (Value c : ckpt) {
        Shape s = shapeOf(c);
        s.insert(s.begin(), k);
        fwdTypes.push_back(withShape(c, s));
      }
      auto fwd = b.create<p::ScanOp>(loc, fwdTypes, ckpt, xg, false);
      Block *fb = b.createBlock(&fwd.getBody());
      for (Value v : body.getArguments())
        fb->addArgument(v.getType(), loc);
      {
        OpBuilder::InsertionGuard g2(b);
        b.setInsertionPointToEnd(fb);
        IRMapping m = forwardMap;
        m.map(body.getArguments(), fb->getArguments());
        for (Operation &op : body.without_terminator())
          b.clone(op, m);
        SmallVector<Value> yields;
        auto yield = cast<p::YieldOp>(body.getTerminator());
        for (size_t i = 0; i < carried; ++i)
          yields.push_back(m.lookup(yield.getValues()[i]));
        for (size_t i = 0; i < carried; ++i)
          yields.push_back(fb->getArgument(i));
        b.create<p::YieldOp>(loc, yields);
      }
      b.setInsertionPointAfter(fwd);
      SmallVector<Value> starts(fwd.getResults().drop_front(carried));

      // (b) reverse over the group's steps: recompute the step, then its VJP.
      SmallVector<Value> innerInits(dc);
      innerInits.append(dz.begin(), dz.end());
      SmallVector<Value> innerXs(starts);
      innerXs.append(xg.begin(), xg.end());
      innerXs.append(dyg.begin(), dyg.end());
      SmallVector<Type> innerTypes;
      for (Value v : innerInits)
        innerTypes.push_back(v.getType());
      for (Value x : xg)
        innerTypes.push_back(x.getType());
      auto step = b.create<p::ScanOp>(loc, innerTypes, innerInits, innerXs, true);
      Block *sb = b.createBlock(&step.getBody());
      for (Value v : innerInits)
        active[sb->addArgument(v.getType(), loc)] = true;
      for (Value x : innerXs)
        active[sb->addArgument(withShape(x, ArrayRef<int64_t>(shapeOf(x)).drop_front()), loc)] =
            true;
      {
        OpBuilder::InsertionGuard g3(b);
        b.setInsertionPointToEnd(sb);
        auto sargs = sb->getArguments();
        size_t nc = closure.size(), nx = rec.groupedXs.size();
        SmallVector<Value> sdc(sargs.begin(), sargs.begin() + carried);
        SmallVector<Value> sdz(sargs.begin() + carried, sargs.begin() + carried + nc);
        size_t pos = carried + nc;
        SmallVector<Value> cs(sargs.begin() + pos, sargs.begin() + pos + carried);
        pos += carried;
        SmallVector<Value> xsl(sargs.begin() + pos, sargs.begin() + pos + nx);
        pos += nx;
        SmallVector<Value> dys(sargs.begin() + pos, sargs.end());

        // Recompute the step body on (carry at start, inputs); closure values come from outside.
        IRMapping m = forwardMap;
        for (size_t i = 0; i < carried; ++i) {
          m.map(body.getArgument(i), cs[i]);
          active[cs[i]] = isActive(rec.inits[i]);
        }
        for (size_t j = 0; j < nx; ++j) {
          m.map(body.getArgument(carried + j), xsl[j]);
          active[xsl[j]] = isActive(forwardMap.lookupOrDefault(scan.getXs()[j]));
        }
        SmallVector<Operation *> cloned;
        for (Operation &op : body.without_terminator())
          cloned.push_back(b.clone(op, m));
        auto yield = cast<p::YieldOp>(body.getTerminator());
        Cotangents local;
        for (size_t i = 0; i < carried; ++i)
          accumulate(local, m.lookup(yield.getValues()[i]), sdc[i]);
        for (size_t j = 0; j < nys; ++j)
          accumulate(local, m.lookup(yield.getValues()[carried + j]), dys[j]);
        if (failed(backward(cloned, local)))
          return failure();
        SmallVector<Value> yields;
        for (size_t i = 0; i < carried; ++i) {
          Value d = local.lookup(cs[i]);
          yields.push_back(d ? d : zeros(cs[i]));
        }
        for (size_t c = 0; c < nc; ++c) {
          Value d = local.lookup(closure[c]);
          yields.push_back(d ? b.create<p::BinaryOp>(loc, sdz[c].getType(), sdz[c], d, "add")
                             : sdz[c]);
        }
        for (size_t j = 0; j < nx; ++j) {
          Value d = local.lookup(xsl[j]);
          yields.push_back(d ? d : zeros(xsl[j]));
        }
        b.create<p::YieldOp>(loc, yields);
      }
      b.setInsertionPointAfter(step);
      b.create<p::YieldOp>(loc, step.getResults());
    }
    b.setInsertionPointAfter(rev);
    for (size_t i = 0; i < carried; ++i)
      accumulate(cot, rec.inits[i], rev.getResult(i));
    for (size_t c = 0; c < closure.size(); ++c)
      accumulate(cot, closure[c], rev.getResult(carried + c));
    for (size_t j = 0; j < rec.groupedXs.size(); ++j) {
      Value x = scan.getXs()[j];
      Value dxg = rev.getResult(carried + closure.size() + j);
      // The grouped input was a reshape of the mapped input; its cotangent goes to that.
      Value mapped = rec.groupedXs[j].getDefiningOp<p::ReshapeOp>()
                         ? rec.groupedXs[j].getDefiningOp<p::ReshapeOp>().getInput()
                         : rec.groupedXs[j];
      accumulate(cot, mapped, reshape(dxg, shapeOf(x)));
    }
    return success();
  }

  OpBuilder &b;
  Location loc;
  int64_t group;
  IRMapping forwardMap; // eval_step values -> their clones in micro_step
  llvm::DenseMap<Value, bool> active;
  llvm::DenseMap<Operation *, ScanRecord> records;
};

// Erases pure ops whose results are unused (the VJP rules emit a few for inactive operands).
void eraseDeadOps(Block &block) {
  bool changed = true;
  while (changed) {
    changed = false;
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(block))) {
      for (Region &r : op.getRegions())
        for (Block &nested : r)
          eraseDeadOps(nested);
      if (op.use_empty() && !op.hasTrait<OpTrait::IsTerminator>() &&
          !isa<p::OutputOp, p::ScanOp>(op) && op.getNumResults() > 0) {
        op.erase();
        changed = true;
      }
    }
  }
}

struct AutodiffPass : ttt::impl::TTTAutodiffBase<AutodiffPass> {
  using TTTAutodiffBase::TTTAutodiffBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    p::ProgramOp eval;
    for (auto program : module.getOps<p::ProgramOp>())
      if (program.getSymName() == "eval_step")
        eval = program;
    if (!eval) {
      module.emitError() << "ttt-autodiff needs the eval_step program (run ttt-expand first)";
      return signalPassFailure();
    }
    if (rematGroup <= 0) {
      eval.emitError() << "remat-group must be positive";
      return signalPassFailure();
    }
    OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
    Location loc = eval.getLoc();
    auto micro = b.create<p::ProgramOp>(loc, "micro_step");
    b.createBlock(&micro.getBody());
    Autodiff ad(b, loc, rematGroup);

    IRMapping &map = ad.forwardMap;
    if (failed(ad.cloneForward(eval.getBody().front(), map)))
      return signalPassFailure();
    p::OutputOp lossOut;
    for (auto out : eval.getBody().getOps<p::OutputOp>())
      if (out.getName() == "loss")
        lossOut = out;
    if (!lossOut) {
      eval.emitError() << "eval_step has no \"loss\" output";
      return signalPassFailure();
    }
    Value loss = map.lookup(lossOut.getValue());
    b.create<p::OutputOp>(loc, "loss", loss);

    SmallVector<Operation *> forward;
    for (Operation &op : micro.getBody().front())
      if (!isa<p::OutputOp>(op))
        forward.push_back(&op);
    Autodiff::Cotangents cot;
    cot[loss] = b.create<p::ConstantOp>(loc, loss.getType(), b.getF64FloatAttr(1.0));
    if (failed(ad.backward(forward, cot)))
      return signalPassFailure();
    // Each gradient is accumulated right where it becomes final (after the op defining its
    // final cotangent), then buckets of about bucketMb megabytes are closed in backward order.
    for (Operation *op : forward)
      if (auto param = dyn_cast<p::ParamOp>(op)) {
        Value g = cot.lookup(param.getResult());
        if (!g)
          g = ad.zeros(param.getResult());
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointAfterValue(g);
        b.create<p::AccumulateGradOp>(loc, param.getName(), g);
      }
    eraseDeadOps(micro.getBody().front());
    markBuckets(micro, int64_t(bucketMb * 1024 * 1024));
  }

  static void markBuckets(p::ProgramOp micro, int64_t capBytes) {
    SmallVector<p::AccumulateGradOp> accs(micro.getBody().getOps<p::AccumulateGradOp>());
    SmallVector<Attribute> names;
    int64_t bytes = 0, bucket = 0;
    for (auto [i, acc] : llvm::enumerate(accs)) {
      auto type = cast<ShapedType>(acc.getGrad().getType());
      bytes += type.getNumElements() * int64_t(type.getElementTypeBitWidth() / 8);
      names.push_back(acc.getNameAttr());
      if (bytes >= capBytes || i + 1 == accs.size()) {
        OpBuilder b(acc->getContext());
        b.setInsertionPointAfter(acc);
        b.create<p::BucketReadyOp>(acc.getLoc(), bucket++, b.getArrayAttr(names), bytes);
        names.clear();
        bytes = 0;
      }
    }
  }
};
} // namespace
