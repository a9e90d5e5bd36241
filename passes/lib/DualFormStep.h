// Shared by ttt-expand and ttt-fuse-inner-loop: the primitive emitter and the dual-form step
// of the inner loop (the body of its tttp.scan). ttt-fuse-inner-loop emits the step once more as
// a template and recognizes a scan whose body is exactly this step.
#pragma once

#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"

namespace ttt::dualform {
using namespace mlir;
namespace p = ttt::prim;

using Shape = SmallVector<int64_t>;

inline Shape shapeOf(Value v) {
  ArrayRef<int64_t> s = cast<ShapedType>(v.getType()).getShape();
  return Shape(s.begin(), s.end());
}

// Emits primitives with static shapes; every helper computes its result type.
struct Emitter {
  OpBuilder &b;
  Location loc;
  Type elem;
  llvm::StringMap<Value> params;

  RankedTensorType type(ArrayRef<int64_t> shape) { return RankedTensorType::get(shape, elem); }

  Value param(ParamOp op, StringRef name) {
    Value &v = params[name];
    if (!v)
      v = b.create<p::ParamOp>(loc, type(op.getType().getShape()), name);
    return v;
  }
  Value matmul(Value a, Value w, bool ta = false, bool tb = false) {
    Shape sa = shapeOf(a), sb = shapeOf(w);
    Shape out(sa.begin(), sa.end());
    out[out.size() - 2] = ta ? sa.back() : sa[sa.size() - 2];
    out.back() = tb ? sb[sb.size() - 2] : sb.back();
    return b.create<p::MatmulOp>(loc, type(out), a, w, ta, tb);
  }
  Value binary(StringRef kind, Value x, Value y) {
    Shape sx = shapeOf(x), sy = shapeOf(y);
    size_t rank = std::max(sx.size(), sy.size());
    Shape out(rank, 1);
    for (size_t i = 0; i < rank; ++i) {
      int64_t dx = i < rank - sx.size() ? 1 : sx[i - (rank - sx.size())];
      int64_t dy = i < rank - sy.size() ? 1 : sy[i - (rank - sy.size())];
      out[i] = std::max(dx, dy);
    }
    return b.create<p::BinaryOp>(loc, type(out), x, y, kind);
  }
  Value add(Value x, Value y) { return binary("add", x, y); }
  Value sub(Value x, Value y) { return binary("sub", x, y); }
  Value mul(Value x, Value y) { return binary("mul", x, y); }
  Value unary(StringRef kind, Value x, double alpha = 0.0) {
    return b.create<p::UnaryOp>(loc, x.getType(), x, b.getStringAttr(kind), b.getF64FloatAttr(alpha));
  }
  Value reduce(StringRef kind, Value x) {
    Shape s = shapeOf(x);
    s.pop_back();
    return b.create<p::ReduceOp>(loc, type(s), x, kind);
  }
  // Reduction over the last dimension keeping it as size 1 (for broadcasting back).
  Value reduceKeep(StringRef kind, Value x) {
    Shape s = shapeOf(x);
    s.back() = 1;
    return reshape(reduce(kind, x), s);
  }
  Value reshape(Value x, ArrayRef<int64_t> shape) {
    if (shapeOf(x) == Shape(shape.begin(), shape.end()))
      return x;
    return b.create<p::ReshapeOp>(loc, type(shape), x);
  }
  Value transpose(Value x, ArrayRef<int64_t> perm) {
    Shape s = shapeOf(x), out;
    for (int64_t d : perm)
      out.push_back(s[d]);
    return b.create<p::TransposeOp>(loc, type(out), x, b.getDenseI64ArrayAttr(perm));
  }
  Value constant(double value, ArrayRef<int64_t> shape) {
    return b.create<p::ConstantOp>(loc, type(shape), b.getF64FloatAttr(value));
  }
  Value layerNorm(Value x, Value w, Value bias, double eps) {
    return b.create<p::LayerNormOp>(loc, x.getType(), x, w, bias, b.getF64FloatAttr(eps));
  }
};


// The values the step reads from outside its scan (the closure), in the shapes it reads them.
struct StepClosure {
  Value gamma, lambda; // [H, 1, f]
  Value tauCol;        // [b, 1]: tau_i, the rows of E
  Value tauLast;       // []: tau_b, the scale of the carried update
  Value onesF, zerosF; // [f]: the unit LayerNorm of Zbar
};

// Emits one dual-form step (spec 2.4-2.6) at e's insertion point on the carry (W [B,H,f,f],
// b [B,H,f]) and one mini-batch (Q, K, V [B,H,b,f], eta [B,H,b]); returns (W', b', out).
SmallVector<Value, 3> emitDualFormStep(Emitter &e, Value W, Value bb, Value Q, Value K, Value V,
                                       Value etaS, const StepClosure &c, double eps);
} // namespace ttt::dualform
