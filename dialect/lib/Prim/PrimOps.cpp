#include "ttt/Dialect/Prim/PrimOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace ttt::prim;

#include "ttt/Dialect/Prim/PrimDialect.cpp.inc"
#include "ttt/Dialect/Prim/PrimInterfaces.cpp.inc"

void PrimDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "ttt/Dialect/Prim/PrimOps.cpp.inc"
      >();
}

namespace {
ArrayRef<int64_t> shapeOf(Value v) { return cast<ShapedType>(v.getType()).getShape(); }
} // namespace

LogicalResult MatmulOp::verify() {
  ArrayRef<int64_t> a = shapeOf(getA()), b = shapeOf(getB()), c = shapeOf(getResult());
  if (a.size() < 2 || b.size() < 2 || c.size() != a.size())
    return emitOpError() << "needs [..., M, K] x [..., K, N] (or [K, N]) -> [..., M, N]";
  int64_t m = getTransposeA() ? a[a.size() - 1] : a[a.size() - 2];
  int64_t k = getTransposeA() ? a[a.size() - 2] : a[a.size() - 1];
  int64_t kb = getTransposeB() ? b[b.size() - 1] : b[b.size() - 2];
  int64_t n = getTransposeB() ? b[b.size() - 2] : b[b.size() - 1];
  if (k != kb)
    return emitOpError() << "contracting sizes differ: " << k << " vs " << kb;
  if (c[c.size() - 2] != m || c[c.size() - 1] != n)
    return emitOpError() << "result must end in " << m << "x" << n;
  if (b.size() != 2 && b.size() != a.size())
    return emitOpError() << "b must be 2-d or have a's rank";
  for (size_t i = 0; i + 2 < a.size(); ++i)
    if (a[i] != c[i] || (b.size() == a.size() && b[i] != a[i]))
      return emitOpError() << "batch dimensions differ";
  return success();
}

LogicalResult BinaryOp::verify() {
  static const char *kinds[] = {"add", "sub", "mul", "div", "max"};
  if (!llvm::is_contained(kinds, getKind()))
    return emitOpError() << "unknown kind '" << getKind() << "'";
  ArrayRef<int64_t> a = shapeOf(getLhs()), b = shapeOf(getRhs()), c = shapeOf(getResult());
  size_t rank = std::max(a.size(), b.size());
  if (c.size() != rank)
    return emitOpError() << "result rank must be the broadcast rank " << rank;
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      return emitOpError() << "shapes do not broadcast at dimension " << i;
    if (c[i] != std::max(da, db))
      return emitOpError() << "result dimension " << i << " must be " << std::max(da, db);
  }
  return success();
}

LogicalResult UnaryOp::verify() {
  static const char *kinds[] = {"neg",     "exp",  "log",       "sqrt", "rsqrt", "reciprocal",
                                "sigmoid", "silu", "gelu_tanh", "relu", "scale", "add_scalar"};
  if (!llvm::is_contained(kinds, getKind()))
    return emitOpError() << "unknown kind '" << getKind() << "'";
  if (getInput().getType() != getResult().getType())
    return emitOpError() << "result type must equal the input type";
  return success();
}

LogicalResult ReduceOp::verify() {
  static const char *kinds[] = {"sum", "mean", "max"};
  if (!llvm::is_contained(kinds, getKind()))
    return emitOpError() << "unknown kind '" << getKind() << "'";
  ArrayRef<int64_t> x = shapeOf(getInput()), y = shapeOf(getResult());
  if (x.empty() || x.drop_back() != y)
    return emitOpError() << "result must be the input without its last dimension";
  return success();
}

LogicalResult TransposeOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput()), y = shapeOf(getResult());
  ArrayRef<int64_t> perm = getPerm();
  if (perm.size() != x.size() || y.size() != x.size())
    return emitOpError() << "perm must have the input's rank";
  SmallVector<bool> seen(x.size(), false);
  for (auto [i, p] : llvm::enumerate(perm)) {
    if (p < 0 || p >= int64_t(x.size()) || seen[p])
      return emitOpError() << "perm is not a permutation";
    seen[p] = true;
    if (y[i] != x[p])
      return emitOpError() << "result dimension " << i << " must be input dimension " << p;
  }
  return success();
}

LogicalResult ReshapeOp::verify() {
  if (cast<ShapedType>(getInput().getType()).getNumElements() !=
      cast<ShapedType>(getResult().getType()).getNumElements())
    return emitOpError() << "must keep the number of elements";
  return success();
}

LogicalResult CausalConvOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput()), k = shapeOf(getKernel());
  if (x.size() != 3 || k.size() != 2 || k[1] != x[2])
    return emitOpError() << "needs an input [B, T, C] and a kernel [K, C]";
  if (Value h = getHistory()) {
    ArrayRef<int64_t> hs = shapeOf(h);
    if (hs.size() != 3 || hs[0] != x[0] || hs[1] != k[0] - 1 || hs[2] != x[2])
      return emitOpError() << "history must be [" << x[0] << ", " << k[0] - 1 << ", " << x[2]
                           << "] (the K - 1 inputs before t = 0)";
  }
  return success();
}

LogicalResult ConcatOp::verify() {
  ArrayRef<int64_t> a = shapeOf(getLhs()), b = shapeOf(getRhs()), c = shapeOf(getResult());
  int64_t axis = getAxis();
  if (axis < 0 || axis >= int64_t(a.size()) || a.size() != b.size() || c.size() != a.size())
    return emitOpError() << "needs operands of one rank and an axis inside it";
  for (size_t i = 0; i < a.size(); ++i) {
    int64_t want = int64_t(i) == axis ? a[i] + b[i] : a[i];
    if ((int64_t(i) != axis && a[i] != b[i]) || c[i] != want)
      return emitOpError() << "result dimension " << i << " must be " << want;
  }
  return success();
}

LogicalResult SliceOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput()), y = shapeOf(getResult());
  int64_t axis = getAxis(), start = getStart();
  if (axis < 0 || axis >= int64_t(x.size()) || y.size() != x.size())
    return emitOpError() << "needs the input's rank and an axis inside it";
  for (size_t i = 0; i < x.size(); ++i)
    if (int64_t(i) != axis && x[i] != y[i])
      return emitOpError() << "only dimension " << axis << " may change";
  if (start < 0 || start + y[axis] > x[axis])
    return emitOpError() << "slice [" << start << ", " << start + y[axis] << ") is outside [0, "
                         << x[axis] << ")";
  return success();
}

LogicalResult ScanOp::verifyRegions() {
  if (getXs().empty())
    return emitOpError() << "needs at least one scanned input";
  int64_t count = getCount();
  Block &body = getBody().front();
  size_t carried = getInits().size();
  if (body.getNumArguments() != carried + getXs().size())
    return emitOpError() << "body takes the carried values then one slice per scanned input";
  for (auto [i, init] : llvm::enumerate(getInits()))
    if (body.getArgument(i).getType() != init.getType() || getResult(i).getType() != init.getType())
      return emitOpError() << "carried value " << i << " changes type";
  for (auto [i, x] : llvm::enumerate(getXs())) {
    ArrayRef<int64_t> shape = shapeOf(x);
    if (shape.empty() || shape[0] != count)
      return emitOpError() << "scanned input " << i << " must have leading dimension " << count;
    if (shapeOf(body.getArgument(carried + i)) != shape.drop_front())
      return emitOpError() << "slice " << i << " must be the input without its leading dimension";
  }
  auto yield = cast<YieldOp>(body.getTerminator());
  if (yield.getValues().size() != getResults().size())
    return emitOpError() << "yield must give one value per result";
  for (size_t i = carried; i < getResults().size(); ++i) {
    ArrayRef<int64_t> out = shapeOf(getResult(i));
    if (out.empty() || out[0] != count || out.drop_front() != shapeOf(yield.getValues()[i]))
      return emitOpError() << "stacked output " << i - carried << " must be [" << count
                           << ", yielded shape]";
  }
  return success();
}

// The shapes of the fused inner loop (PrimOps.td): W [B,H,f,f], b [B,H,f], q/k/v [n,B,H,b,f],
// eta [n,B,H,b], tau [b], tau_last [], gamma/lambda [H,f], checkpoints [n/k, ...].
static LogicalResult verifyInnerLoop(Operation *op, Value q, Value W, Value bias, Value k, Value v,
                                     Value eta, Value tau, Value tauLast, Value gamma, Value lambda,
                                     Value ckW, Value ckB, Value cache, int64_t group,
                                     bool tokenMajor) {
  ArrayRef<int64_t> qs = shapeOf(q);
  if (qs.size() != 5)
    return op->emitOpError() << (tokenMajor ? "q must be [B, n, b, H, f] (token_major)"
                                            : "q must be [n, B, H, b, f]");
  int64_t n = qs[0], B = qs[1], H = qs[2], mb = qs[3], f = qs[4];
  if (tokenMajor)
    n = qs[1], B = qs[0], H = qs[3], mb = qs[2];
  if (group <= 0 || n % group != 0)
    return op->emitOpError() << "remat_group must divide the mini-batch count " << n;
  auto expect = [&](Value x, ArrayRef<int64_t> want, StringRef name) -> LogicalResult {
    if (shapeOf(x) != want)
      return op->emitOpError() << name << " has the wrong shape";
    return success();
  };
  int64_t g = n / group;
  if (failed(expect(W, {B, H, f, f}, "W")) || failed(expect(bias, {B, H, f}, "b")) ||
      failed(expect(k, qs, "k")) || failed(expect(v, qs, "v")) ||
      failed(expect(eta, tokenMajor ? SmallVector<int64_t>{B, n, mb, H}
                                    : SmallVector<int64_t>{n, B, H, mb},
                    "eta")) ||
      failed(expect(tau, {mb}, "tau")) ||
      failed(expect(tauLast, {}, "tau_last")) || failed(expect(gamma, {H, f}, "gamma")) ||
      failed(expect(lambda, {H, f}, "lambda")) || failed(expect(ckW, {g, B, H, f, f}, "ckpt_W")) ||
      failed(expect(ckB, {g, B, H, f}, "ckpt_b")))
    return failure();
  if (cache) {
    if (failed(expect(cache, {n, B, H, innerLoopCacheFloats(mb, f)}, "cache")))
      return failure();
    if (!cast<ShapedType>(cache.getType()).getElementType().isF32())
      return op->emitOpError() << "cache must be f32";
  }
  return success();
}

LogicalResult InnerLoopFwdOp::verify() {
  if (getW0().getType() != getWFinal().getType() || getB0().getType() != getBFinal().getType() ||
      getO().getType() != getQ().getType())
    return emitOpError() << "results must match W0, b0 and q";
  return verifyInnerLoop(*this, getQ(), getW0(), getB0(), getK(), getV(), getEta(), getTau(),
                         getTauLast(), getGamma(), getLambda(), getCkptW(), getCkptB(), getCache(),
                         getRematGroup(), getTokenMajor());
}

LogicalResult InnerLoopBwdOp::verify() {
  if (failed(verifyInnerLoop(*this, getQ(), getDwFinal(), getDbFinal(), getK(), getV(), getEta(),
                             getTau(), getTauLast(), getGamma(), getLambda(), getCkptW(),
                             getCkptB(), getCache(), getRematGroup(), getTokenMajor())))
    return failure();
  ValueRange ins = {getDwFinal(), getDbFinal(), getQ(), getK(), getV(), getEta(), getTau(),
                    getTauLast(), getGamma(), getLambda()};
  for (auto [in, out] : llvm::zip(ins, getResults()))
    if (in.getType() != out.getType())
      return emitOpError() << "each cotangent must have the type of its primal";
  if (getDO().getType() != getQ().getType())
    return emitOpError() << "d_o must have the type of q";
  return success();
}

namespace {
int64_t numElementsOf(Value v) { return cast<ShapedType>(v.getType()).getNumElements(); }

// Does `in` broadcast to `out` (numpy rules, right-aligned)?
bool broadcastsTo(ArrayRef<int64_t> in, ArrayRef<int64_t> out) {
  if (in.size() > out.size())
    return false;
  for (size_t i = 0; i < in.size(); ++i) {
    int64_t d = in[in.size() - 1 - i];
    if (d != 1 && d != out[out.size() - 1 - i])
      return false;
  }
  return true;
}

// Slots each step reads: 2 for binary kinds, 1 for unary ones, 3 for "<kind>_bwd"; -1 unknown.
int fusedArity(StringRef op) {
  static const char *binary[] = {"add", "sub", "mul", "div", "max"};
  static const char *unary[] = {"neg",     "exp",  "log",       "sqrt", "rsqrt", "reciprocal",
                                "sigmoid", "silu", "gelu_tanh", "relu", "scale", "add_scalar"};
  if (llvm::is_contained(binary, op))
    return 2;
  if (llvm::is_contained(unary, op))
    return 1;
  if (op.consume_back("_bwd") && llvm::is_contained(unary, op))
    return 3;
  return -1;
}
} // namespace

LogicalResult FusedElementwiseOp::verify() {
  size_t steps = getOps().size();
  if (steps == 0 || getArgs().size() != 3 * steps || getAlphas().size() != steps)
    return emitOpError() << "needs at least one step, 3 args and 1 alpha per step";
  int64_t n = numElementsOf(getResult());
  for (auto [i, v] : llvm::enumerate(getInputs()))
    if (numElementsOf(v) != n && !broadcastsTo(shapeOf(v), shapeOf(getResult())))
      return emitOpError() << "input " << i << " neither has the result's " << n
                           << " elements nor broadcasts to its shape";
  int64_t slots = getInputs().size();
  for (size_t j = 0; j < steps; ++j) {
    StringRef op = cast<StringAttr>(getOps()[j]).getValue();
    int arity = fusedArity(op);
    if (arity < 0)
      return emitOpError() << "step " << j << ": unknown op '" << op << "'";
    for (int a = 0; a < 3; ++a) {
      int64_t slot = getArgs()[3 * j + a];
      if ((a < arity) != (slot >= 0) || slot >= slots)
        return emitOpError() << "step " << j << " ('" << op << "') reads " << arity
                             << " earlier slots; argument " << a << " is " << slot;
    }
    ++slots;
  }
  return success();
}

static LogicalResult verifyLmHead(Operation *op, Value h, Value table, Value targets,
                                  int64_t chunk) {
  ArrayRef<int64_t> hs = shapeOf(h), es = shapeOf(table);
  if (hs.empty() || es.size() != 2 || hs.back() != es[1])
    return op->emitOpError() << "needs hidden [..., D] and table [V, D]";
  if (numElementsOf(targets) * hs.back() != numElementsOf(h))
    return op->emitOpError() << "needs one target per row of hidden";
  if (chunk <= 0)
    return op->emitOpError() << "chunk must be positive";
  return success();
}

LogicalResult LmHeadXentOp::verify() {
  if (failed(verifyLmHead(*this, getHidden(), getTable(), getTargets(), getChunk())))
    return failure();
  for (Value r : getResults())
    if (shapeOf(r).size() != 1 || shapeOf(r)[0] != numElementsOf(getTargets()))
      return emitOpError() << "loss, mask and lse are [N], one per target";
  return success();
}

LogicalResult LmHeadXentBwdOp::verify() {
  if (failed(verifyLmHead(*this, getHidden(), getTable(), getTargets(), getChunk())))
    return failure();
  if (getDhidden().getType() != getHidden().getType() ||
      getDtable().getType() != getTable().getType())
    return emitOpError() << "dhidden and dtable must have the types of hidden and table";
  int64_t n = numElementsOf(getTargets());
  if (numElementsOf(getLse()) != n || numElementsOf(getDloss()) != n)
    return emitOpError() << "lse and dloss need one element per target";
  return success();
}

#define GET_OP_CLASSES
#include "ttt/Dialect/Prim/PrimOps.cpp.inc"
