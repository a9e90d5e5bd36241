// One reverse-mode rule per primitive (VJPOpInterface); ttt-autodiff drives them.
#include "ttt/Dialect/Prim/PrimOps.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace ttt::prim;

namespace {
RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }
SmallVector<int64_t> shapeOf(Value v) {
  ArrayRef<int64_t> s = tensorType(v).getShape();
  return SmallVector<int64_t>(s.begin(), s.end());
}
RankedTensorType like(Value v, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, tensorType(v).getElementType());
}
Value reshape(OpBuilder &b, Location loc, Value x, ArrayRef<int64_t> shape) {
  if (shapeOf(x) == SmallVector<int64_t>(shape.begin(), shape.end()))
    return x;
  return b.create<ReshapeOp>(loc, like(x, shape), x);
}
// The cotangent of a broadcast operand: sum over the broadcast dimensions.
Value sumTo(OpBuilder &b, Location loc, Value dy, Value operand) {
  if (shapeOf(dy) == shapeOf(operand))
    return dy;
  return b.create<SumToOp>(loc, operand.getType(), dy);
}
Value binary(OpBuilder &b, Location loc, StringRef kind, Value x, Value y, Type type) {
  return b.create<BinaryOp>(loc, type, x, y, kind);
}
Value neg(OpBuilder &b, Location loc, Value x) {
  return b.create<UnaryOp>(loc, x.getType(), x, b.getStringAttr("neg"), b.getF64FloatAttr(0));
}
// Matmul with the result type computed from the operands.
Value matmul(OpBuilder &b, Location loc, Value x, Value y, bool tx, bool ty) {
  SmallVector<int64_t> sx = shapeOf(x), sy = shapeOf(y), out = sx;
  out[out.size() - 2] = tx ? sx.back() : sx[sx.size() - 2];
  out.back() = ty ? sy[sy.size() - 2] : sy.back();
  return b.create<MatmulOp>(loc, like(x, out), x, y, tx, ty);
}
} // namespace

LogicalResult EmbeddingOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                    SmallVectorImpl<Value> &dops) {
  dops.assign({Value(), b.create<EmbeddingBwdOp>(getLoc(), getTable().getType(), getTokens(), dres[0])});
  return success();
}

// C = op(A) op(B), op = optional transpose; B may be 2-d and broadcast over A's batch.
LogicalResult MatmulOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                 SmallVectorImpl<Value> &dops) {
  Location loc = getLoc();
  Value dc = dres[0], a = getA(), w = getB();
  bool ta = getTransposeA(), tb = getTransposeB();
  bool broadcastB = shapeOf(w).size() == 2 && shapeOf(a).size() > 2;
  // dA = dC op(B)^T, or for a transposed A: (dC op(B)^T)^T = op(B) dC^T.
  Value da;
  if (!ta)
    da = matmul(b, loc, dc, w, false, !tb);
  else if (!broadcastB)
    da = matmul(b, loc, w, dc, tb, true);
  else
    return emitOpError() << "has no VJP for a transposed batched A with a broadcast B";
  // dB = op(A)^T dC, or for a transposed B: dC^T op(A). A broadcast B sums over the batch: the
  // batch folds into the rows of 2-d matrices.
  Value aa = a, dcc = dc;
  if (broadcastB) {
    if (ta)
      return emitOpError() << "has no VJP for a transposed batched A with a broadcast B";
    SmallVector<int64_t> sa = shapeOf(a), sc = shapeOf(dc);
    int64_t rows = tensorType(a).getNumElements() / sa.back();
    aa = reshape(b, loc, a, {rows, sa.back()});
    dcc = reshape(b, loc, dc, {rows, sc.back()});
  }
  Value db = !tb ? matmul(b, loc, aa, dcc, !ta, false) : matmul(b, loc, dcc, aa, true, ta);
  dops.assign({da, db});
  return success();
}

LogicalResult RmsNormOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                  SmallVectorImpl<Value> &dops) {
  auto bwd = b.create<RmsNormBwdOp>(getLoc(), TypeRange{getInput().getType(), getWeight().getType()},
                                    getInput(), getWeight(), dres[0], getEpsAttr());
  dops.assign({bwd.getDinput(), bwd.getDweight()});
  return success();
}

LogicalResult LayerNormOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                    SmallVectorImpl<Value> &dops) {
  auto bwd = b.create<LayerNormBwdOp>(
      getLoc(), TypeRange{getInput().getType(), getWeight().getType(), getBias().getType()},
      getInput(), getWeight(), dres[0], getEpsAttr());
  dops.assign({bwd.getDinput(), bwd.getDweight(), bwd.getDbias()});
  return success();
}

LogicalResult CausalConvOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                     SmallVectorImpl<Value> &dops) {
  // The history is carried without gradient (state passing): it feeds the kernel's cotangent
  // and gets none.
  auto bwd = b.create<CausalConvBwdOp>(
      getLoc(), TypeRange{getInput().getType(), getKernel().getType(), getBias().getType()},
      getInput(), getKernel(), dres[0], getHistory());
  dops.assign({bwd.getDinput(), bwd.getDkernel(), bwd.getDbias()});
  if (getHistory())
    dops.push_back(Value());
  return success();
}

LogicalResult RopeOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres, SmallVectorImpl<Value> &dops) {
  dops.assign({b.create<RopeBwdOp>(getLoc(), getType(), dres[0], getPeriodAttr(), getThetaAttr())});
  return success();
}

LogicalResult BinaryOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                 SmallVectorImpl<Value> &dops) {
  Location loc = getLoc();
  Value dy = dres[0], x = getLhs(), y = getRhs();
  Type full = getType();
  StringRef kind = getKind();
  if (kind == "add") {
    dops.assign({sumTo(b, loc, dy, x), sumTo(b, loc, dy, y)});
  } else if (kind == "sub") {
    Value dx = sumTo(b, loc, dy, x);
    dops.assign({dx, sumTo(b, loc, neg(b, loc, dy), y)});
  } else if (kind == "mul") {
    Value dx = sumTo(b, loc, binary(b, loc, "mul", dy, y, full), x);
    dops.assign({dx, sumTo(b, loc, binary(b, loc, "mul", dy, x, full), y)});
  } else if (kind == "div") {
    // d(x/y)/dy = -(x/y)/y
    Value dx = sumTo(b, loc, binary(b, loc, "div", dy, y, full), x);
    Value q = binary(b, loc, "div", getResult(), y, full);
    dops.assign({dx, sumTo(b, loc, neg(b, loc, binary(b, loc, "mul", dy, q, full)), y)});
  } else {
    return emitOpError() << "has no VJP for kind '" << kind << "'";
  }
  return success();
}

LogicalResult UnaryOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                SmallVectorImpl<Value> &dops) {
  dops.assign({b.create<UnaryBwdOp>(getLoc(), getType(), getInput(), getResult(), dres[0], getKindAttr(),
                               getAlphaAttr())});
  return success();
}

LogicalResult ReduceOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                 SmallVectorImpl<Value> &dops) {
  if (getKind() == "max")
    return emitOpError() << "has no VJP for kind 'max'";
  Location loc = getLoc();
  SmallVector<int64_t> keep = shapeOf(getResult());
  int64_t cols = shapeOf(getInput()).back();
  keep.push_back(1);
  double scale = getKind() == "mean" ? 1.0 / double(cols) : 1.0;
  Value spread = b.create<ConstantOp>(loc, like(getInput(), {cols}), b.getF64FloatAttr(scale));
  dops.assign({binary(b, loc, "mul", reshape(b, loc, dres[0], keep), spread, getInput().getType())});
  return success();
}

LogicalResult TransposeOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                    SmallVectorImpl<Value> &dops) {
  ArrayRef<int64_t> perm = getPerm();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = int64_t(i);
  dops.assign({b.create<TransposeOp>(getLoc(), getInput().getType(), dres[0],
                                b.getDenseI64ArrayAttr(inverse))});
  return success();
}

LogicalResult ReshapeOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                  SmallVectorImpl<Value> &dops) {
  dops.assign({reshape(b, getLoc(), dres[0], shapeOf(getInput()))});
  return success();
}

LogicalResult TrilOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres, SmallVectorImpl<Value> &dops) {
  dops.assign({b.create<TrilOp>(getLoc(), getType(), dres[0])});
  return success();
}

LogicalResult SoftmaxXentOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                      SmallVectorImpl<Value> &dops) {
  // The mask (result 1) has no gradient; a null loss cotangent means none flows.
  if (!dres[0]) {
    dops.assign({Value(), Value()});
    return success();
  }
  dops.assign({b.create<SoftmaxXentBwdOp>(getLoc(), getLogits().getType(), getLogits(), getTargets(),
                                     dres[0], getIgnoreTokenAttr()),
          Value()});
  return success();
}

LogicalResult MaskedMeanOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                     SmallVectorImpl<Value> &dops) {
  dops.assign({b.create<MaskedMeanBwdOp>(getLoc(), getLoss().getType(), getMask(), dres[0]), Value()});
  return success();
}

LogicalResult ConcatOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                 SmallVectorImpl<Value> &dops) {
  int64_t axis = getAxis(), la = shapeOf(getLhs())[axis];
  Value da = b.create<SliceOp>(getLoc(), getLhs().getType(), dres[0], axis, 0);
  Value db = b.create<SliceOp>(getLoc(), getRhs().getType(), dres[0], axis, la);
  dops.assign({da, db});
  return success();
}

// The cotangent of a slice: dy put back in place, zeros around it.
LogicalResult SliceOp::buildVJP(OpBuilder &b, ArrayRef<Value> dres,
                                SmallVectorImpl<Value> &dops) {
  Location loc = getLoc();
  int64_t axis = getAxis(), start = getStart();
  SmallVector<int64_t> full = shapeOf(getInput());
  int64_t size = shapeOf(getResult())[axis], after = full[axis] - start - size;
  Value d = dres[0];
  auto zeros = [&](int64_t n) {
    SmallVector<int64_t> s = full;
    s[axis] = n;
    return b.create<ConstantOp>(loc, like(getInput(), s), b.getF64FloatAttr(0.0)).getResult();
  };
  auto concat = [&](Value x, Value y) {
    SmallVector<int64_t> s = shapeOf(x);
    s[axis] += shapeOf(y)[axis];
    return b.create<ConcatOp>(loc, like(x, s), x, y, axis).getResult();
  };
  if (start > 0)
    d = concat(zeros(start), d);
  if (after > 0)
    d = concat(d, zeros(after));
  dops.assign({d});
  return success();
}
