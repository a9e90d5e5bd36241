// ttt-expand: the unrolled ttt.model -> tttp.program "eval_step" of tensor primitives (Passes.td).
#include "DualFormStep.h"
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/StringMap.h"

namespace ttt {
#define GEN_PASS_DEF_TTTEXPAND
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt

using namespace mlir;
using namespace ttt;
namespace p = ttt::prim;

namespace {
using ttt::dualform::Emitter;
using ttt::dualform::Shape;
using ttt::dualform::shapeOf;

// State passing (recipe state_passing, issue 6): every TTT layer's (W, b) and every causal conv's
// last (width - 1) inputs are program inputs "state:<name>" and outputs "state_out:<name>"; the
// input "state:reset" (1: the rows start new streams) selects W1/b1 and zero history instead.
// The states are inputs, so no gradient flows into them (truncated BPTT).
struct StatePassing {
  bool enabled = false;
  Value reset, keep;                              // reset and 1 - reset, scalars
  SmallVector<std::pair<std::string, Value>> outs; // "state_out:<name>" values

  Value input(Emitter &e, const std::string &name, ArrayRef<int64_t> shape) {
    return e.b.create<p::InputOp>(e.loc, e.type(shape), "state:" + name);
  }
  // reset ? fresh : carried
  Value select(Emitter &e, Value fresh, Value carried) {
    return e.add(e.mul(fresh, reset), e.mul(carried, keep));
  }
};

std::string paramName(Value v) {
  auto param = v.getDefiningOp<ParamOp>();
  return param ? param.getName().str() : std::string("unnamed");
}
std::string stripSuffix(std::string s, StringRef suffix) {
  if (StringRef(s).ends_with(suffix))
    s.resize(s.size() - suffix.size());
  return s;
}

// A causal conv; with state passing its input is prefixed by the carried history.
Value causalConv(Emitter &e, StatePassing &sp, Value x, Value kernel, Value bias,
                 const std::string &name) {
  if (!sp.enabled)
    return e.b.create<p::CausalConvOp>(e.loc, x.getType(), x, kernel, bias, Value());
  Shape xs = shapeOf(x);
  const int64_t h = shapeOf(kernel)[0] - 1, T = xs[1];
  if (h == 0)
    return e.b.create<p::CausalConvOp>(e.loc, x.getType(), x, kernel, bias, Value());
  Value tail = e.mul(sp.input(e, name + ".tail", {xs[0], h, xs[2]}), sp.keep);
  // The next step's history: the last h inputs (of the history and x together when T < h).
  Value next =
      T >= h ? e.b.create<p::SliceOp>(e.loc, e.type({xs[0], h, xs[2]}), x, 1, T - h)
             : e.b.create<p::SliceOp>(
                   e.loc, e.type({xs[0], h, xs[2]}),
                   e.b.create<p::ConcatOp>(e.loc, e.type({xs[0], T + h, xs[2]}), tail, x, 1), 1, T);
  sp.outs.push_back({name + ".tail", next});
  return e.b.create<p::CausalConvOp>(e.loc, x.getType(), x, kernel, bias, tail);
}

// The TTT-Linear layer (spec 2.1-2.7) as primitives, the inner loop as a tttp.scan.
Value expandTTTLinear(Emitter &e, StatePassing &sp, TTTLinearOp op, IRMapping &map, int64_t B,
                      int64_t T) {
  auto in = [&](Value v) { return map.lookup(v); };
  const int64_t D = shapeOf(op.getInput()).back(), H = op.getHeads(), f = D / H;
  const int64_t mb = op.getMiniBatch(), n = T / mb;
  const double eps = op.getEps().convertToDouble();
  Value u = in(op.getInput());

  // 2.1 projections and convs.
  Value s = e.matmul(u, in(op.getWQ()));
  Value xq = causalConv(e, sp, s, in(op.getConvQKernel()), in(op.getConvQBias()),
                        stripSuffix(paramName(op.getConvQKernel()), ".kernel"));
  Value xk = causalConv(e, sp, s, in(op.getConvKKernel()), in(op.getConvKBias()),
                        stripSuffix(paramName(op.getConvKKernel()), ".kernel"));
  Value xv = e.matmul(u, in(op.getWV()));
  Value gatePre = e.matmul(u, in(op.getWG()));

  // 2.2 heads and RoPE at t mod mini_batch; then mini-batch major: [n, B, H, b, f].
  auto rope = [&](Value x) {
    Value heads = e.reshape(x, {B, T, H, f});
    return e.b.create<p::RopeOp>(e.loc, heads.getType(), heads, e.b.getI64IntegerAttr(mb),
                                 op.getRopeThetaAttr());
  };
  auto toScan = [&](Value heads) {
    return e.transpose(e.reshape(heads, {B, n, mb, H, f}), {1, 0, 3, 2, 4});
  };
  Value q = toScan(rope(xq)), k = toScan(rope(xk));
  Value v = toScan(e.reshape(xv, {B, T, H, f}));

  // 2.3 eta_lr[t, h] = base_lr * sigmoid(u_t . w_h + c_h) / f, as [n, B, H, b].
  Value gate = e.add(e.matmul(u, in(op.getLrWeight()), false, true), in(op.getLrBias()));
  Value etaLr = e.unary("scale", e.unary("sigmoid", gate), op.getBaseLr().convertToDouble() / f);
  Value eta = e.transpose(e.reshape(etaLr, {B, n, mb, H}), {1, 0, 3, 2});
  // tau_i = max(0, 1/i + delta_i), i = 1..b; tau_b (the carried state's scale) as a scalar.
  Value tau = e.unary("relu", e.add(e.unary("reciprocal", e.b.create<p::IotaOp>(
                                                             e.loc, e.type({mb}),
                                                             e.b.getF64FloatAttr(1.0))),
                                    in(op.getTokenIdx())));
  // One-hot of the last position: relu(iota from 2 - b) = [0, ..., 0, 1].
  Value lastOneHot = e.unary(
      "relu", e.b.create<p::IotaOp>(e.loc, e.type({mb}), e.b.getF64FloatAttr(2.0 - mb)));
  Value tauLast = e.reduce("sum", e.mul(tau, lastOneHot));
  Value tauCol = e.reshape(tau, {mb, 1});

  // Per-head LN parameters broadcast over [B, H, b, f].
  Value gamma = e.reshape(in(op.getTttNormWeight()), {H, 1, f});
  Value lambda = e.reshape(in(op.getTttNormBias()), {H, 1, f});
  Value onesF = e.constant(1.0, {f}), zerosF = e.constant(0.0, {f});

  // 2.8 every sequence starts from W1, b1 (with state passing: unless it continues a stream).
  Value w0 = e.mul(in(op.getW1()), e.constant(1.0, {B, 1, 1, 1}));
  Value b0 = e.mul(in(op.getB1()), e.constant(1.0, {B, 1, 1}));
  const std::string layer = stripSuffix(paramName(op.getW1()), ".W1");
  if (sp.enabled) {
    w0 = sp.select(e, w0, sp.input(e, layer + ".W", {B, H, f, f}));
    b0 = sp.select(e, b0, sp.input(e, layer + ".b", {B, H, f}));
  }

  Shape outShape = {n, B, H, mb, f};
  auto scan = e.b.create<p::ScanOp>(
      e.loc, TypeRange{w0.getType(), b0.getType(), e.type(outShape)}, ValueRange{w0, b0},
      ValueRange{q, k, v, eta});
  Block *body = e.b.createBlock(&scan.getBody());
  for (Value x : {w0, b0})
    body->addArgument(x.getType(), e.loc);
  for (Value x : {q, k, v, eta}) {
    Shape sl = shapeOf(x);
    sl.erase(sl.begin());
    body->addArgument(e.type(sl), e.loc);
  }
  {
    OpBuilder::InsertionGuard guard(e.b);
    e.b.setInsertionPointToEnd(body);
    Value W = body->getArgument(0), bb = body->getArgument(1);
    Value Q = body->getArgument(2), K = body->getArgument(3), V = body->getArgument(4);
    Value etaS = body->getArgument(5); // [B, H, b]
    dualform::StepClosure closure{gamma, lambda, tauCol, tauLast, onesF, zerosF};
    SmallVector<Value, 3> next = dualform::emitDualFormStep(e, W, bb, Q, K, V, etaS, closure, eps);
    e.b.create<p::YieldOp>(e.loc, ValueRange(next));
  }
  e.b.setInsertionPointAfter(scan);
  if (sp.enabled) {
    sp.outs.push_back({layer + ".W", scan.getResult(0)});
    sp.outs.push_back({layer + ".b", scan.getResult(1)});
  }

  // 2.7 tail: back to [B, T, D], post LayerNorm, gelu gate, output projection.
  Value o = e.reshape(e.transpose(scan.getResult(2), {1, 0, 3, 2, 4}), {B, T, D});
  Value y = e.layerNorm(o, in(op.getPostNormWeight()), in(op.getPostNormBias()), eps);
  y = e.mul(e.unary("gelu_tanh", gatePre), y);
  return e.matmul(y, in(op.getWO()));
}

struct Expand : ttt::impl::TTTExpandBase<Expand> {
  using TTTExpandBase::TTTExpandBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<ModelOp> models(module.getOps<ModelOp>());
    if (models.size() != 1) {
      module.emitError() << "ttt-expand needs exactly one ttt.model";
      return signalPassFailure();
    }
    ModelOp model = models.front();
    if (!model.getBody().getOps<RepeatOp>().empty()) {
      model.emitError() << "run ttt-unroll-repeat before ttt-expand";
      return signalPassFailure();
    }
    if (dtype != "f32" && dtype != "f64") {
      model.emitError() << "dtype must be f32 or f64, got '" << dtype << "'";
      return signalPassFailure();
    }
    const int64_t B = batch, T = seqLen ? int64_t(seqLen) : model.getRecipe().getSeqLen();
    const int64_t miniBatch = model.getRecipe().getMiniBatch();
    if (B <= 0 || T <= 0 || T % miniBatch != 0) {
      model.emitError() << "batch must be positive and seq-len a multiple of " << miniBatch;
      return signalPassFailure();
    }

    OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
    Location loc = model.getLoc();
    Type elem = dtype == "f64" ? Type(b.getF64Type()) : Type(b.getF32Type());
    auto program = b.create<p::ProgramOp>(loc, "eval_step");
    b.createBlock(&program.getBody());
    Emitter e{b, loc, elem, {}};
    Block &bodyIn = model.getBody().front();
    auto tokType = RankedTensorType::get({B, T}, b.getI32Type());
    IRMapping map;
    map.map(bodyIn.getArgument(0), b.create<p::InputOp>(loc, tokType, "tokens"));
    map.map(bodyIn.getArgument(1), b.create<p::InputOp>(loc, tokType, "targets"));
    StatePassing sp;
    if (model.getRecipe().getStatePassing()) {
      sp.enabled = true;
      sp.reset = b.create<p::InputOp>(loc, e.type({}), "state:reset");
      sp.keep = e.unary("add_scalar", e.unary("neg", sp.reset), 1.0);
    }
    auto act = [&](Value v) { // [B, T, features] of a model activation
      return e.type({B, T, shapeOf(v).back()});
    };

    for (Operation &op : bodyIn) {
      auto in = [&](Value v) { return map.lookup(v); };
      Value result;
      if (auto param = dyn_cast<ParamOp>(op)) {
        result = e.param(param, param.getName());
      } else if (auto emb = dyn_cast<EmbeddingOp>(op)) {
        result = b.create<p::EmbeddingOp>(loc, act(emb.getResult()), in(emb.getTokens()),
                                          in(emb.getTable()));
      } else if (auto norm = dyn_cast<RmsNormOp>(op)) {
        result = b.create<p::RmsNormOp>(loc, act(norm.getResult()), in(norm.getInput()),
                                        in(norm.getWeight()), norm.getEpsAttr());
      } else if (auto conv = dyn_cast<CausalConvOp>(op)) {
        result = causalConv(e, sp, in(conv.getInput()), in(conv.getKernel()), in(conv.getBias()),
                            stripSuffix(paramName(conv.getKernel()), ".kernel"));
      } else if (auto add = dyn_cast<AddOp>(op)) {
        result = e.add(in(add.getLhs()), in(add.getRhs()));
      } else if (auto ttt = dyn_cast<TTTLinearOp>(op)) {
        result = expandTTTLinear(e, sp, ttt, map, B, T);
      } else if (auto mlp = dyn_cast<SwiGLUMlpOp>(op)) {
        Value x = in(mlp.getInput());
        Value gated = e.unary("silu", e.matmul(x, in(mlp.getWGate())));
        Value hidden = e.mul(gated, e.matmul(x, in(mlp.getWUp())));
        result = e.matmul(hidden, in(mlp.getWDown()));
      } else if (auto head = dyn_cast<LmHeadOp>(op)) {
        result = e.matmul(in(head.getInput()), in(head.getTable()), false, true);
      } else if (auto xent = dyn_cast<CrossEntropyOp>(op)) {
        Value logits = in(xent.getLogits());
        int64_t vocab = shapeOf(logits).back();
        Value flat = e.reshape(logits, {B * T, vocab});
        auto sx = b.create<p::SoftmaxXentOp>(loc, TypeRange{e.type({B * T}), e.type({B * T})},
                                             flat, in(xent.getTargets()),
                                             xent.getIgnoreTokenAttr());
        Value loss = e.reshape(sx.getLoss(), {B, T});
        Value mask = e.reshape(sx.getMask(), {B, T});
        result = b.create<p::MaskedMeanOp>(loc, e.type({}), loss, mask);
      } else if (auto ret = dyn_cast<ReturnOp>(op)) {
        b.create<p::OutputOp>(loc, "loss", in(ret.getLoss()));
        for (auto &[name, value] : sp.outs)
          b.create<p::OutputOp>(loc, "state_out:" + name, value);
        continue;
      } else {
        op.emitError() << "ttt-expand does not know this op";
        return signalPassFailure();
      }
      map.map(op.getResult(0), result);
    }
  }
};
} // namespace

// The step of the inner loop's scan (DualFormStep.h); spec 2.4 and 2.6.
SmallVector<Value, 3> ttt::dualform::emitDualFormStep(Emitter &e, Value W, Value bb, Value Q,
                                                    Value K, Value V, Value etaS,
                                                    const StepClosure &c, double eps) {
  Shape ws = shapeOf(W);
  const int64_t B = ws[0], H = ws[1], f = ws[3], mb = shapeOf(Q)[2];
  Value gamma = c.gamma, lambda = c.lambda, tauCol = c.tauCol, tauLast = c.tauLast;
  Value onesF = c.onesF, zerosF = c.zerosF;
  Value bRow = e.reshape(bb, {B, H, 1, f});

  // 2.4 G = grad_z 1/2 |LN(z) - (v - k)|^2 at z = K W0 + b0, in closed form.
  Value z = e.add(e.matmul(K, W), bRow);
  Value target = e.sub(V, K);
  Value zc = e.sub(z, e.reduceKeep("mean", z));
  Value rstd = e.unary("rsqrt", e.unary("add_scalar", e.reduceKeep("mean", e.mul(zc, zc)), eps));
  Value zhat = e.mul(zc, rstd);
  Value g = e.mul(e.sub(e.add(e.mul(gamma, zhat), lambda), target), gamma);
  Value s1 = e.reduceKeep("sum", g);
  Value s2 = e.reduceKeep("sum", e.mul(g, zhat));
  // (Operands are emitted in separate statements so the op order does not depend on the C++
  // compiler's argument evaluation order.)
  Value zhatS2 = e.mul(zhat, s2);
  Value inner = e.sub(e.sub(e.unary("scale", g, double(f)), s1), zhatS2);
  Value G = e.mul(e.unary("scale", inner, 1.0 / f), rstd);

  // 2.6 dual form: E[i, j] = tau_i eta_j; Zbar = Q W0 + b0 - (tril(E) * (1 + tril(Q K^T))) G.
  Value E = e.mul(tauCol, e.reshape(etaS, {B, H, 1, mb}));
  Value A = e.b.create<p::TrilOp>(e.loc, e.type({B, H, mb, mb}), e.matmul(Q, K, false, true));
  Value Etril = e.b.create<p::TrilOp>(e.loc, E.getType(), E);
  Value coeff = e.add(e.mul(E, A), Etril);
  Value coeffG = e.matmul(coeff, G);
  Value zbar = e.sub(e.add(e.matmul(Q, W), bRow), coeffG);
  Value ln = e.layerNorm(zbar, onesF, zerosF, eps);
  Value out = e.add(Q, e.add(e.mul(gamma, ln), lambda));

  // Carried state: W0 - (e * K)^T G and b0 - e G with e = E[b, :] = tau_b eta.
  Value eLast = e.mul(etaS, tauLast); // [B, H, b]
  Value Wn = e.sub(W, e.matmul(e.mul(K, e.reshape(eLast, {B, H, mb, 1})), G, true, false));
  Value bn = e.sub(bb, e.reshape(e.matmul(e.reshape(eLast, {B, H, 1, mb}), G), {B, H, f}));
  return {Wn, bn, out};
}
