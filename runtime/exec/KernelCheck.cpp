// `ttt-run kernel-check` (KernelCheck.h): the cases and their fp64 references, the case files,
// the CPU evaluation of a case, and the comparison. No CUDA here (KernelCheckCuda.cpp).
#include "runtime/exec/KernelCheck.h"

#include "runtime/backend/cpu/Backward.h"
#include "runtime/backend/cpu/Fused.h"
#include "runtime/backend/cpu/InnerLoop.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>

namespace ttt::kcheck {
namespace fs = std::filesystem;
using json = nlohmann::json;

const char *modeName(Mode mode) { return mode == Mode::bf16 ? "bf16" : "fp32"; }
double tolerance(Mode mode) { return mode == Mode::bf16 ? 1e-2 : 1e-5; }
const char *dtypeName(DType dtype) {
  return dtype == DType::i32 ? "i32" : dtype == DType::f64 ? "f64" : "f32";
}
const char *statusName(Status status) {
  return status == Status::pass ? "pass" : status == Status::skip ? "skip" : "FAIL";
}

namespace {
const Tensor &find(const std::vector<Tensor> &list, const std::string &name, const Case &c,
                   const char *what) {
  for (const Tensor &t : list)
    if (t.name == name)
      return t;
  throw std::invalid_argument("case " + c.name + ": no " + what + " '" + name + "'");
}
} // namespace

const Tensor &Case::input(const std::string &n) const { return find(inputs, n, *this, "input"); }
const Tensor &Case::output(const std::string &n) const { return find(outputs, n, *this, "output"); }

const std::vector<KindInfo> kKinds = {
    {"embedding", "embedding"},
    {"rms_norm", "rmsNorm"},
    {"layer_norm", "layerNorm"},
    {"causal_conv", "causalConv"},
    {"rope", "rope (direction +1 and -1)"},
    {"binary", "binary (every BinaryOp, broadcasting)"},
    {"unary", "unary (every UnaryOp)"},
    {"unary_bwd", "unaryBackward (every UnaryOp)"},
    {"reduce", "reduceLast (every ReduceOp)"},
    {"transpose", "transpose"},
    {"slice", "slice"},
    {"insert", "insert"},
    {"tril", "tril"},
    {"fill", "fill"},
    {"iota", "iota"},
    {"softmax_xent", "softmaxXent"},
    {"masked_mean", "maskedMean"},
    {"embedding_bwd", "embeddingBackward"},
    {"rms_norm_bwd", "rmsNormBackward"},
    {"layer_norm_bwd", "layerNormBackward"},
    {"causal_conv_bwd", "causalConvBackward"},
    {"sum_to", "sumTo"},
    {"softmax_xent_bwd", "softmaxXentBackward"},
    {"masked_mean_bwd", "maskedMeanBackward"},
    {"accumulate", "accumulate"},
    {"inner_loop_fwd", "innerLoopForward"},
    {"inner_loop_bwd", "innerLoopBackward"},
    {"fused_elementwise", "fusedElementwise"},
    {"lm_head_xent", "xentStart, xentChunk, xentFinish (logits chunks on the host)"},
    {"lm_head_xent_bwd", "xentBackwardChunk (logits chunks, dh and dtable on the host)"},
    {"matmul", "runtime/backend/cuda/Matmul.h (fp32 and bf16 modes; hook, see KernelCheckCuda.cpp)"},
};

// --- op names -----------------------------------------------------------------------------------
namespace {
const std::vector<std::pair<std::string, cpu::BinaryOp>> &kBinaryOps = cpu::binaryOpNames();
const std::vector<std::pair<std::string, cpu::UnaryOp>> &kUnaryOps = cpu::unaryOpNames();
const std::vector<std::pair<std::string, cpu::ReduceOp>> &kReduceOps = cpu::reduceOpNames();

template <typename E>
E opByName(const std::vector<std::pair<std::string, E>> &table, const std::string &name) {
  for (const auto &[n, op] : table)
    if (name == n)
      return op;
  throw std::invalid_argument("unknown op '" + name + "'");
}

std::string shapeText(const Shape &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

Shape shapeParam(const json &p, const char *key) { return p.at(key).get<Shape>(); }
} // namespace

// --- the CPU backend on a case ------------------------------------------------------------------
namespace {
template <typename T> std::vector<T> floats(const Case &c, const std::string &name) {
  const Tensor &t = c.input(name);
  if (t.dtype != DType::f32)
    throw std::invalid_argument("case " + c.name + ": input '" + name + "' is not f32");
  return std::vector<T>(t.f32.begin(), t.f32.end());
}
const std::vector<int32_t> &ints(const Case &c, const std::string &name) {
  const Tensor &t = c.input(name);
  if (t.dtype != DType::i32)
    throw std::invalid_argument("case " + c.name + ": input '" + name + "' is not i32");
  return t.i32;
}
void ok(const std::string &err) {
  if (!err.empty())
    throw std::runtime_error(err);
}

// Output slots whose storage never moves while more are added.
template <typename T> struct Out {
  CpuOutputs<T> &o;
  explicit Out(CpuOutputs<T> &out) : o(out) { o.values.reserve(16); }
  T *add(const std::string &name, const Shape &shape) {
    if (o.values.size() == o.values.capacity())
      throw std::logic_error("kernel-check: too many outputs");
    o.names.push_back(name);
    o.shapes.push_back(shape);
    o.values.emplace_back(size_t(cpu::numElements(shape)));
    return o.values.back().data();
  }
};
} // namespace

cpu::MatmulShape matmulShape(const Case &c, Shape *outShape) {
  const Shape a = c.input("a").shape, b = c.input("b").shape;
  const bool ta = c.params.at("trans_a").get<bool>(), tb = c.params.at("trans_b").get<bool>();
  if (a.size() < 2 || b.size() < 2)
    throw std::invalid_argument("matmul: operands of rank < 2");
  const size_t ra = a.size(), rb = b.size();
  cpu::MatmulShape s;
  s.m = ta ? a[ra - 1] : a[ra - 2];
  s.k = ta ? a[ra - 2] : a[ra - 1];
  s.n = tb ? b[rb - 2] : b[rb - 1];
  s.transA = ta;
  s.transB = tb;
  s.batch = cpu::numElements(a) / (a[ra - 1] * a[ra - 2]);
  s.strideA = a[ra - 1] * a[ra - 2];
  s.strideB = rb == 2 ? 0 : b[rb - 1] * b[rb - 2];
  s.strideC = s.m * s.n;
  if ((tb ? b[rb - 1] : b[rb - 2]) != s.k ||
      (rb != 2 && cpu::numElements(b) / (b[rb - 1] * b[rb - 2]) != s.batch))
    throw std::invalid_argument("matmul: operand shapes do not match");
  if (outShape) {
    outShape->assign(a.begin(), a.end() - 2);
    outShape->push_back(s.m);
    outShape->push_back(s.n);
  }
  return s;
}

cpu::InnerLoopShape innerLoopShape(const Case &c) {
  const Shape q = c.input("q").shape;
  if (q.size() != 5)
    throw std::invalid_argument(c.name + ": q must have 5 dimensions");
  return cpu::InnerLoopShape::ofQ(q.data(), c.params.at("group").get<int64_t>(),
                                  c.params.at("eps").get<double>(),
                                  c.params.value("token_major", false));
}

std::vector<cpu::FusedStep> fusedSteps(const Case &c) {
  std::vector<std::string> names;
  std::vector<int64_t> args;
  std::vector<double> alphas;
  for (const json &s : c.params.at("steps")) {
    names.push_back(s.at("op").get<std::string>());
    for (int64_t a : s.at("args").get<std::vector<int64_t>>())
      args.push_back(a);
    alphas.push_back(s.value("alpha", 0.0));
  }
  if (args.size() != 3 * names.size())
    throw std::invalid_argument("fused_elementwise: every step needs 3 slots");
  std::vector<cpu::FusedStep> steps;
  ok(cpu::parseFusedSteps(names, args.data(), alphas.data(), int64_t(c.inputs.size()), steps));
  return steps;
}

template <typename T> CpuOutputs<T> evalOnCpu(const Case &c) {
  CpuOutputs<T> result;
  Out<T> out(result);
  const json &p = c.params;
  const std::string &k = c.kind;
  auto num = [&](const char *key) { return p.at(key).get<double>(); };
  auto integer = [&](const char *key) { return p.at(key).get<int64_t>(); };
  auto op = [&]() { return p.at("op").get<std::string>(); };

  if (k == "embedding") {
    const Tensor &tok = c.input("tokens");
    const Shape table = c.input("table").shape;
    std::vector<T> t = floats<T>(c, "table");
    Shape ys = tok.shape;
    ys.push_back(table[1]);
    ok(cpu::embedding<T>(tok.i32.data(), tok.size(), t.data(), table[0], table[1],
                         out.add("y", ys)));
  } else if (k == "rms_norm" || k == "layer_norm") {
    const Shape xs = c.input("x").shape;
    const int64_t d = xs.back(), rows = cpu::numElements(xs) / d;
    std::vector<T> x = floats<T>(c, "x"), w = floats<T>(c, "w");
    if (k == "rms_norm") {
      cpu::rmsNorm<T>(x.data(), w.data(), rows, d, num("eps"), out.add("y", xs));
    } else {
      std::vector<T> b = floats<T>(c, "b");
      cpu::layerNorm<T>(x.data(), w.data(), b.data(), rows, d, num("eps"), out.add("y", xs));
    }
  } else if (k == "causal_conv") {
    const Shape xs = c.input("x").shape;
    std::vector<T> x = floats<T>(c, "x"), kern = floats<T>(c, "kernel"), b = floats<T>(c, "bias");
    const bool hist = p.value("history", false);
    std::vector<T> h = hist ? floats<T>(c, "history") : std::vector<T>();
    cpu::causalConv<T>(x.data(), kern.data(), b.data(), xs[0], xs[1], xs[2],
                       c.input("kernel").shape[0], out.add("y", xs), hist ? h.data() : nullptr);
  } else if (k == "rope") {
    const Shape xs = c.input("x").shape;
    std::vector<T> x = floats<T>(c, "x");
    T *y = out.add("y", xs);
    if (num("direction") > 0)
      cpu::rope<T>(x.data(), xs[0], xs[1], xs[2], xs[3], integer("period"), num("theta"), y);
    else
      cpu::ropeBackward<T>(x.data(), xs[0], xs[1], xs[2], xs[3], integer("period"), num("theta"),
                           y);
  } else if (k == "binary") {
    const Shape sa = c.input("a").shape, sb = c.input("b").shape;
    const Shape so = cpu::broadcastShape(sa, sb);
    if (so.empty() && !(sa.empty() && sb.empty()))
      throw std::invalid_argument("binary: shapes do not broadcast");
    std::vector<T> a = floats<T>(c, "a"), b = floats<T>(c, "b");
    cpu::binary<T>(opByName(kBinaryOps, op()), a.data(), sa, b.data(), sb, out.add("out", so));
  } else if (k == "unary") {
    const Tensor &xt = c.input("x");
    std::vector<T> x = floats<T>(c, "x");
    cpu::unary<T>(opByName(kUnaryOps, op()), x.data(), xt.size(), num("alpha"),
                  out.add("y", xt.shape));
  } else if (k == "unary_bwd") {
    const Tensor &xt = c.input("x");
    std::vector<T> x = floats<T>(c, "x"), y = floats<T>(c, "y"), dy = floats<T>(c, "dy");
    cpu::unaryBackward<T>(opByName(kUnaryOps, op()), x.data(), y.data(), dy.data(), xt.size(),
                          num("alpha"), out.add("dx", xt.shape));
  } else if (k == "reduce") {
    const Shape xs = c.input("x").shape;
    const int64_t cols = xs.back();
    std::vector<T> x = floats<T>(c, "x");
    cpu::reduceLast<T>(opByName(kReduceOps, op()), x.data(), cpu::numElements(xs) / cols, cols,
                       out.add("y", Shape(xs.begin(), xs.end() - 1)));
  } else if (k == "transpose") {
    const Shape xs = c.input("x").shape;
    const std::vector<int> perm = p.at("perm").get<std::vector<int>>();
    Shape ys;
    for (int d : perm)
      ys.push_back(xs.at(size_t(d)));
    std::vector<T> x = floats<T>(c, "x");
    cpu::transpose<T>(x.data(), xs, perm, out.add("y", ys));
  } else if (k == "slice") {
    const Shape xs = c.input("x").shape;
    const int axis = int(integer("axis"));
    Shape ys = xs;
    ys.at(size_t(axis)) = integer("size");
    std::vector<T> x = floats<T>(c, "x");
    cpu::slice<T>(x.data(), xs, axis, integer("start"), integer("size"), out.add("y", ys));
  } else if (k == "insert") {
    const Shape ds = c.input("dst").shape, ss = c.input("src").shape;
    const int axis = int(integer("axis"));
    std::vector<T> src = floats<T>(c, "src"), dst = floats<T>(c, "dst");
    T *y = out.add("dst", ds);
    std::copy(dst.begin(), dst.end(), y);
    cpu::insert<T>(src.data(), ds, axis, integer("start"), ss.at(size_t(axis)), y);
  } else if (k == "tril") {
    const Shape xs = c.input("x").shape;
    const int64_t n = xs.back();
    std::vector<T> x = floats<T>(c, "x");
    cpu::tril<T>(x.data(), cpu::numElements(xs) / (n * n), n, out.add("y", xs));
  } else if (k == "fill") {
    const Shape ys = shapeParam(p, "shape");
    cpu::fill<T>(out.add("y", ys), cpu::numElements(ys), num("value"));
  } else if (k == "iota") {
    // As the interpreter's iota instruction: y[i] = start + i, rounded once.
    const Shape ys = shapeParam(p, "shape");
    T *y = out.add("y", ys);
    for (int64_t i = 0; i < cpu::numElements(ys); ++i)
      y[i] = T(num("start") + double(i));
  } else if (k == "softmax_xent") {
    const Shape ls = c.input("logits").shape;
    const int64_t vocab = ls.back(), n = cpu::numElements(ls) / vocab;
    const Shape rows(ls.begin(), ls.end() - 1);
    std::vector<T> logits = floats<T>(c, "logits");
    T *loss = out.add("loss", rows), *mask = out.add("mask", rows);
    ok(cpu::softmaxXent<T>(logits.data(), ints(c, "targets").data(), n, vocab, integer("ignore"),
                           loss, mask));
  } else if (k == "masked_mean") {
    const Shape ls = c.input("loss").shape;
    std::vector<T> loss = floats<T>(c, "loss"), mask = floats<T>(c, "mask");
    cpu::maskedMean<T>(loss.data(), mask.data(), ls[0], ls[1], out.add("out", {}));
  } else if (k == "embedding_bwd") {
    const Tensor &tok = c.input("tokens");
    const Shape dys = c.input("dy").shape;
    const int64_t vocab = integer("vocab"), dim = dys.back();
    std::vector<T> dy = floats<T>(c, "dy");
    ok(cpu::embeddingBackward<T>(tok.i32.data(), tok.size(), dy.data(), vocab, dim,
                                 out.add("dtable", {vocab, dim})));
  } else if (k == "rms_norm_bwd" || k == "layer_norm_bwd") {
    const Shape xs = c.input("x").shape;
    const int64_t d = xs.back(), rows = cpu::numElements(xs) / d;
    std::vector<T> x = floats<T>(c, "x"), w = floats<T>(c, "w"), dy = floats<T>(c, "dy");
    T *dx = out.add("dx", xs), *dw = out.add("dw", {d});
    if (k == "rms_norm_bwd")
      cpu::rmsNormBackward<T>(x.data(), w.data(), dy.data(), rows, d, num("eps"), dx, dw);
    else
      cpu::layerNormBackward<T>(x.data(), w.data(), dy.data(), rows, d, num("eps"), dx, dw,
                                out.add("db", {d}));
  } else if (k == "causal_conv_bwd") {
    const Shape xs = c.input("x").shape, ks = c.input("kernel").shape;
    std::vector<T> x = floats<T>(c, "x"), kern = floats<T>(c, "kernel"), dy = floats<T>(c, "dy");
    T *dx = out.add("dx", xs), *dk = out.add("dkernel", ks), *db = out.add("dbias", {xs[2]});
    const bool hist = p.value("history", false);
    std::vector<T> h = hist ? floats<T>(c, "history") : std::vector<T>();
    cpu::causalConvBackward<T>(x.data(), kern.data(), dy.data(), xs[0], xs[1], xs[2], ks[0], dx, dk,
                               db, hist ? h.data() : nullptr);
  } else if (k == "sum_to") {
    const Shape xs = c.input("x").shape, to = shapeParam(p, "to");
    std::vector<T> x = floats<T>(c, "x");
    cpu::sumToShape<T>(x.data(), xs, to, out.add("y", to));
  } else if (k == "softmax_xent_bwd") {
    const Shape ls = c.input("logits").shape;
    const int64_t vocab = ls.back(), n = cpu::numElements(ls) / vocab;
    std::vector<T> logits = floats<T>(c, "logits"), dloss = floats<T>(c, "dloss");
    cpu::softmaxXentBackward<T>(logits.data(), ints(c, "targets").data(), dloss.data(), n, vocab,
                                integer("ignore"), out.add("dlogits", ls));
  } else if (k == "masked_mean_bwd") {
    const Shape ms = c.input("mask").shape;
    std::vector<T> mask = floats<T>(c, "mask"), dout = floats<T>(c, "dout");
    cpu::maskedMeanBackward<T>(mask.data(), dout.at(0), ms[0], ms[1], out.add("dloss", ms));
  } else if (k == "accumulate") {
    // accumulate_grad as the CPU runner does it: acc[i] += T(scale) * g[i].
    const Shape s = c.input("acc").shape;
    std::vector<T> acc = floats<T>(c, "acc"), g = floats<T>(c, "g");
    const T scale = T(num("scale"));
    T *y = out.add("acc", s);
    for (size_t i = 0; i < acc.size(); ++i)
      y[i] = acc[i] + scale * g[i];
  } else if (k == "inner_loop_fwd" || k == "inner_loop_bwd") {
    const cpu::InnerLoopShape s = innerLoopShape(c);
    const int64_t groups = s.n / std::max<int64_t>(1, s.group);
    const Shape W = {s.batch, s.heads, s.headDim, s.headDim}, b = {s.batch, s.heads, s.headDim};
    const Shape qs = c.input("q").shape, etas = c.input("eta").shape;
    std::vector<T> q = floats<T>(c, "q"), kk = floats<T>(c, "k"), v = floats<T>(c, "v"),
                   eta = floats<T>(c, "eta"), tau = floats<T>(c, "tau"),
                   tauLast = floats<T>(c, "tau_last"), gamma = floats<T>(c, "gamma"),
                   lambda = floats<T>(c, "lambda");
    if (k == "inner_loop_fwd") {
      std::vector<T> W0 = floats<T>(c, "W0"), b0 = floats<T>(c, "b0");
      T *Wf = out.add("W_final", W), *bf = out.add("b_final", b), *o = out.add("o", qs);
      T *cW = out.add("ckpt_W", {groups, s.batch, s.heads, s.headDim, s.headDim});
      T *cb = out.add("ckpt_b", {groups, s.batch, s.heads, s.headDim});
      cpu::innerLoopForward<T>(s, W0.data(), b0.data(), q.data(), kk.data(), v.data(), eta.data(),
                               tau.data(), tauLast.data(), gamma.data(), lambda.data(), Wf, bf, o,
                               cW, cb);
    } else {
      std::vector<T> cW = floats<T>(c, "ckpt_W"), cb = floats<T>(c, "ckpt_b"),
                     dWf = floats<T>(c, "dW_final"), dbf = floats<T>(c, "db_final"),
                     dO = floats<T>(c, "dO");
      T *dW0 = out.add("dW0", W), *db0 = out.add("db0", b), *dq = out.add("dq", qs),
        *dk = out.add("dk", qs), *dv = out.add("dv", qs), *deta = out.add("deta", etas),
        *dtau = out.add("dtau", c.input("tau").shape),
        *dtauLast = out.add("dtau_last", c.input("tau_last").shape),
        *dgamma = out.add("dgamma", c.input("gamma").shape),
        *dlambda = out.add("dlambda", c.input("lambda").shape);
      cpu::innerLoopBackward<T>(s, cW.data(), cb.data(), q.data(), kk.data(), v.data(),
                                eta.data(), tau.data(), tauLast.data(), gamma.data(),
                                lambda.data(), dWf.data(), dbf.data(), dO.data(), dW0, db0, dq,
                                dk, dv, deta, dtau, dtauLast, dgamma, dlambda);
    }
  } else if (k == "fused_elementwise") {
    const Shape os = shapeParam(p, "shape");
    std::vector<std::vector<T>> data;
    std::vector<const T *> ptrs;
    std::vector<Shape> shapes;
    for (const Tensor &t : c.inputs) {
      data.push_back(floats<T>(c, t.name));
      shapes.push_back(t.shape);
    }
    for (const auto &d : data)
      ptrs.push_back(d.data());
    cpu::fusedElementwise<T>(fusedSteps(c), ptrs, shapes, os,
                             out.add("out", os));
  } else if (k == "lm_head_xent" || k == "lm_head_xent_bwd") {
    const Shape hs = c.input("h").shape, es = c.input("table").shape;
    const int64_t dim = es[1], vocab = es[0], n = cpu::numElements(hs) / dim;
    const Shape rows(hs.begin(), hs.end() - 1);
    std::vector<T> h = floats<T>(c, "h"), table = floats<T>(c, "table");
    const int32_t *targets = ints(c, "targets").data();
    if (k == "lm_head_xent") {
      T *loss = out.add("loss", rows), *mask = out.add("mask", rows), *lse = out.add("lse", rows);
      ok(cpu::lmHeadXent<T>(h.data(), table.data(), targets, n, dim, vocab, integer("ignore"),
                            integer("chunk"), loss, mask, lse));
    } else {
      std::vector<T> lse = floats<T>(c, "lse"), dloss = floats<T>(c, "dloss");
      T *dh = out.add("dh", hs), *dtable = out.add("dtable", es);
      cpu::lmHeadXentBackward<T>(h.data(), table.data(), targets, lse.data(), dloss.data(), n, dim,
                                 vocab, integer("ignore"), integer("chunk"), dh, dtable);
    }
  } else if (k == "matmul") {
    Shape cs;
    const cpu::MatmulShape s = matmulShape(c, &cs);
    std::vector<T> a = floats<T>(c, "a"), b = floats<T>(c, "b");
    cpu::matmul<T>(s, T(1), a.data(), b.data(), false, out.add("c", cs));
  } else {
    throw std::invalid_argument("case " + c.name + ": unknown kind '" + k + "'");
  }
  return result;
}
template CpuOutputs<float> evalOnCpu<float>(const Case &);
template CpuOutputs<double> evalOnCpu<double>(const Case &);

std::string CpuFloatDevice::run(const Case &c, std::vector<std::vector<float>> &outputs) {
  try {
    CpuOutputs<float> r = evalOnCpu<float>(c);
    if (r.names.size() != c.outputs.size())
      return "the CPU gives " + std::to_string(r.names.size()) + " outputs, the case has " +
             std::to_string(c.outputs.size());
    for (size_t i = 0; i < r.names.size(); ++i)
      if (r.names[i] != c.outputs[i].name)
        return "output " + std::to_string(i) + " is '" + r.names[i] + "', the case says '" +
               c.outputs[i].name + "'";
    outputs = std::move(r.values);
  } catch (const std::exception &e) {
    return e.what();
  }
  return "";
}

// --- the cases ----------------------------------------------------------------------------------
namespace {
// A deterministic generator of its own (mt19937_64 bits, our own uniform and normal), seeded per
// case by the seed and the case name: adding a case leaves the others' inputs unchanged.
class Rng {
public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  double unit() { return double(g_() >> 11) * 0x1.0p-53; } // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * unit(); }
  double normal() {
    const double u1 = 1.0 - unit(), u2 = unit(); // u1 in (0, 1]
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  int64_t below(int64_t n) { return int64_t(g_() % uint64_t(n)); }

private:
  std::mt19937_64 g_;
};

uint64_t fnv1a64(const void *data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto *p = static_cast<const unsigned char *>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

// Round to the nearest bfloat16 (ties to even), kept as a float: the operand a bf16 kernel gets.
float bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  bits &= 0xffff0000u;
  float r;
  std::memcpy(&r, &bits, 4);
  return r;
}

class Builder {
public:
  Builder(uint64_t seed, const std::string &name, const std::string &kind,
          Mode mode = Mode::fp32)
      : rng(seed ^ fnv1a64(name.data(), name.size())) {
    c.name = name;
    c.kind = kind;
    c.mode = mode;
  }
  Rng rng;
  Case c;

  std::vector<float> &f32(const std::string &name, const Shape &shape,
                          const std::function<double(Rng &)> &gen) {
    Tensor t;
    t.name = name;
    t.shape = shape;
    t.f32.resize(size_t(cpu::numElements(shape)));
    for (float &v : t.f32) {
      v = float(gen(rng));
      if (c.mode == Mode::bf16)
        v = bf16(v);
    }
    c.inputs.push_back(std::move(t));
    return c.inputs.back().f32;
  }
  std::vector<float> &normal(const std::string &name, const Shape &shape, double scale = 1.0,
                             double mean = 0.0) {
    return f32(name, shape, [=](Rng &r) { return mean + scale * r.normal(); });
  }
  std::vector<float> &uniform(const std::string &name, const Shape &shape, double lo, double hi) {
    return f32(name, shape, [=](Rng &r) { return r.uniform(lo, hi); });
  }
  std::vector<float> &values(const std::string &name, const Shape &shape, std::vector<float> v) {
    Tensor t;
    t.name = name;
    t.shape = shape;
    t.f32 = std::move(v);
    c.inputs.push_back(std::move(t));
    return c.inputs.back().f32;
  }
  std::vector<int32_t> &ids(const std::string &name, const Shape &shape, int64_t limit) {
    Tensor t;
    t.name = name;
    t.dtype = DType::i32;
    t.shape = shape;
    t.i32.resize(size_t(cpu::numElements(shape)));
    for (int32_t &v : t.i32)
      v = int32_t(rng.below(limit));
    c.inputs.push_back(std::move(t));
    return c.inputs.back().i32;
  }
  // Targets in [0, vocab); exactly `ignored` of them (spread out) are the ignore token.
  std::vector<int32_t> &targets(const Shape &shape, int64_t vocab, int32_t ignore, int ignored) {
    std::vector<int32_t> &t = ids("targets", shape, vocab);
    for (int32_t &v : t)
      if (v == ignore)
        v = int32_t((ignore + 1) % vocab);
    for (int i = 0; i < ignored; ++i)
      t[size_t((2 * i + 1) * int64_t(t.size()) / (2 * ignored))] = ignore;
    return t;
  }
};

// The references, and the rules every case must meet.
Case finish(Builder &b) {
  Case &c = b.c;
  for (const Tensor &t : c.inputs) {
    if ((t.dtype == DType::i32 ? t.i32.size() : t.f32.size()) != size_t(t.size()))
      throw std::logic_error("case " + c.name + ": input '" + t.name + "' does not fit its shape");
    bool nonzero = false;
    for (float v : t.f32)
      nonzero |= v != 0.0f;
    for (int32_t v : t.i32)
      nonzero |= v != 0;
    if (!nonzero)
      throw std::logic_error("case " + c.name + ": input '" + t.name + "' is all zeros");
  }
  CpuOutputs<double> ref = evalOnCpu<double>(c);
  for (size_t i = 0; i < ref.names.size(); ++i) {
    Tensor t;
    t.name = ref.names[i];
    t.dtype = DType::f64;
    t.shape = ref.shapes[i];
    t.f64 = std::move(ref.values[i]);
    for (double v : t.f64)
      if (!std::isfinite(v))
        throw std::runtime_error("case " + c.name + ": the reference '" + t.name +
                                 "' is not finite");
    c.outputs.push_back(std::move(t));
  }
  return c;
}

std::string fmtNum(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Domains: inputs where every op is defined and well conditioned.
double unaryInput(const std::string &op, Rng &r) {
  if (op == "log" || op == "sqrt" || op == "rsqrt" || op == "reciprocal")
    return r.uniform(0.1, 4.0);
  if (op == "exp")
    return r.uniform(-4.0, 4.0);
  return 2.0 * r.normal();
}
double unaryAlpha(const std::string &op) {
  return op == "scale" ? 0.37 : op == "add_scalar" ? -1.25 : 0.0;
}

void forwardCases(uint64_t seed, std::vector<Case> &cases) {
  { // embedding: tokens [2, 64] of a 300-row table, dim 768
    Builder b(seed, "embedding", "embedding");
    b.ids("tokens", {2, 64}, 300);
    b.normal("table", {300, 768}, 0.02);
    b.c.desc = "tokens[2,64] table[300,768]";
    cases.push_back(finish(b));
  }
  { // norms: 128 rows of dim 768 (one block per row: more rows only add blocks)
    Builder b(seed, "rms_norm", "rms_norm");
    b.normal("x", {2, 64, 768});
    b.uniform("w", {768}, 0.5, 1.5);
    b.c.params = {{"eps", 1e-6}};
    b.c.desc = "x[2,64,768] eps " + fmtNum(1e-6);
    cases.push_back(finish(b));
  }
  {
    Builder b(seed, "layer_norm", "layer_norm");
    b.normal("x", {2, 64, 768}, 2.0, 0.5);
    b.uniform("w", {768}, 0.5, 1.5);
    b.normal("b", {768}, 0.1);
    b.c.params = {{"eps", 1e-5}};
    b.c.desc = "x[2,64,768] eps " + fmtNum(1e-5);
    cases.push_back(finish(b));
  }
  {
    Builder b(seed, "causal_conv", "causal_conv");
    b.normal("x", {2, 64, 768});
    b.normal("kernel", {4, 768}, 0.5);
    b.normal("bias", {768}, 0.1);
    b.c.desc = "x[2,64,768] width 4";
    cases.push_back(finish(b));
  }
  { // state passing: the carried history before t = 0 (small: the files' size is capped)
    Builder b(seed, "causal_conv.hist", "causal_conv");
    b.normal("x", {2, 24, 64});
    b.normal("kernel", {4, 64}, 0.5);
    b.normal("bias", {64}, 0.1);
    b.normal("history", {2, 3, 64});
    b.c.params = {{"history", true}};
    b.c.desc = "x[2,24,64] width 4, history";
    cases.push_back(finish(b));
  }
  for (int direction : {1, -1}) { // the period (24) is below the sequence (32): positions wrap
    Builder b(seed, direction > 0 ? "rope.fwd" : "rope.bwd", "rope");
    b.normal("x", {2, 32, 12, 64});
    b.c.params = {{"period", 24}, {"theta", 10000.0}, {"direction", double(direction)}};
    b.c.desc = std::string("x[2,32,12,64] period 24 dir ") + (direction > 0 ? "+1" : "-1");
    cases.push_back(finish(b));
  }
  // binary: every op with b broadcast along rows, then other broadcasting patterns.
  for (const auto &[name, op] : kBinaryOps) {
    (void)op;
    const std::string opName = name;
    Builder b(seed, "binary." + opName, "binary");
    b.normal("a", {4, 37, 96});
    if (opName == "div")
      b.f32("b", {37, 1}, [](Rng &r) { return (r.unit() < 0.5 ? -1 : 1) * r.uniform(0.5, 2.0); });
    else
      b.normal("b", {37, 1});
    b.c.params = {{"op", opName}};
    b.c.desc = "[4,37,96] " + opName + " [37,1]";
    cases.push_back(finish(b));
  }
  struct Pattern {
    const char *name, *op;
    Shape a, b;
  };
  const Pattern patterns[] = {
      {"binary.add.both", "add", {4, 1, 96}, {37, 1}},
      {"binary.mul.scalar", "mul", {64, 96}, {}},
      {"binary.sub.rank5", "sub", {2, 1, 5, 1, 64}, {3, 1, 7, 64}},
      {"binary.div.lhs", "div", {96}, {4, 37, 96}},
      {"binary.max.same", "max", {4099}, {4099}},
  };
  for (const Pattern &pt : patterns) {
    Builder b(seed, pt.name, "binary");
    b.normal("a", pt.a);
    if (std::string(pt.op) == "div")
      b.f32("b", pt.b, [](Rng &r) { return (r.unit() < 0.5 ? -1 : 1) * r.uniform(0.5, 2.0); });
    else
      b.normal("b", pt.b);
    b.c.params = {{"op", pt.op}};
    b.c.desc = shapeText(pt.a) + " " + pt.op + " " + shapeText(pt.b);
    cases.push_back(finish(b));
  }
  for (const auto &[name, op] : kUnaryOps) {
    (void)op;
    const std::string opName = name;
    Builder b(seed, "unary." + opName, "unary");
    b.f32("x", {16, 512}, [&](Rng &r) { return unaryInput(opName, r); });
    b.c.params = {{"op", opName}, {"alpha", unaryAlpha(opName)}};
    b.c.desc = "x[16,512]" + (unaryAlpha(opName) != 0 ? " alpha " + fmtNum(unaryAlpha(opName)) : "");
    cases.push_back(finish(b));
  }
  for (const auto &[name, kind] : kReduceOps) {
    (void)kind;
    Builder b(seed, std::string("reduce.") + name, "reduce");
    b.normal("x", {128, 768}, 1.0, 0.1);
    b.c.params = {{"op", name}};
    b.c.desc = "x[128,768]";
    cases.push_back(finish(b));
  }
  {
    Builder b(seed, "reduce.sum.odd", "reduce");
    b.normal("x", {2000, 37});
    b.c.params = {{"op", "sum"}};
    b.c.desc = "x[2000,37]";
    cases.push_back(finish(b));
  }
  struct Perm {
    const char *name;
    Shape shape;
    std::vector<int> perm;
  };
  const Perm perms[] = {{"transpose.heads", {2, 12, 32, 32}, {0, 2, 1, 3}},
                        {"transpose.2d", {300, 130}, {1, 0}},
                        {"transpose.rank5", {2, 3, 4, 5, 6}, {4, 2, 0, 3, 1}}};
  for (const Perm &pm : perms) {
    Builder b(seed, pm.name, "transpose");
    b.normal("x", pm.shape);
    b.c.params = {{"perm", pm.perm}};
    std::string perm;
    for (int d : pm.perm)
      perm += std::to_string(d);
    b.c.desc = "x" + shapeText(pm.shape) + " perm " + perm;
    cases.push_back(finish(b));
  }
  struct Range {
    const char *name;
    Shape shape;
    int axis;
    int64_t start, size;
  };
  const Range slices[] = {{"slice.mid", {4, 96, 128}, 1, 10, 50},
                          {"slice.last", {32, 8, 130}, 2, 1, 64},
                          {"slice.first", {10, 300}, 0, 3, 5}};
  for (const Range &r : slices) {
    Builder b(seed, r.name, "slice");
    b.normal("x", r.shape);
    b.c.params = {{"axis", r.axis}, {"start", r.start}, {"size", r.size}};
    b.c.desc = "x" + shapeText(r.shape) + " axis " + std::to_string(r.axis) + " [" +
               std::to_string(r.start) + "," + std::to_string(r.start + r.size) + ")";
    cases.push_back(finish(b));
  }
  const Range inserts[] = {{"insert.mid", {2, 96, 128}, 1, 10, 50},
                           {"insert.last", {32, 8, 130}, 2, 1, 64}};
  for (const Range &r : inserts) {
    Builder b(seed, r.name, "insert");
    Shape src = r.shape;
    src[size_t(r.axis)] = r.size;
    b.normal("src", src);
    b.normal("dst", r.shape);
    b.c.params = {{"axis", r.axis}, {"start", r.start}};
    b.c.desc = "src" + shapeText(src) + " into " + shapeText(r.shape) + " at " +
               std::to_string(r.start);
    cases.push_back(finish(b));
  }
  for (const Shape &s : {Shape{2, 128, 128}, Shape{96, 16, 16}}) {
    Builder b(seed, "tril." + std::to_string(s.back()), "tril");
    b.normal("x", s);
    b.c.desc = "x" + shapeText(s);
    cases.push_back(finish(b));
  }
  {
    Builder b(seed, "fill", "fill");
    const double value = b.rng.uniform(-10, 10);
    b.c.params = {{"shape", Shape{30001}}, {"value", value}};
    b.c.desc = "y[30001] value " + fmtNum(value);
    cases.push_back(finish(b));
  }
  {
    Builder b(seed, "iota", "iota");
    const double start = std::round(b.rng.uniform(-1000, 1000) * 4) / 4; // quarters: exact
    b.c.params = {{"shape", Shape{30001}}, {"start", start}};
    b.c.desc = "y[30001] start " + fmtNum(start);
    cases.push_back(finish(b));
  }
  { // vocab 32000, 8 rows, 2 ignored (ignore token 1 = BOS)
    Builder b(seed, "softmax_xent", "softmax_xent");
    b.normal("logits", {8, 32000}, 3.0);
    b.targets({8}, 32000, 1, 2);
    b.c.params = {{"ignore", 1}};
    b.c.desc = "logits[8,32000] 2 ignored";
    cases.push_back(finish(b));
  }
  { // one sequence fully masked (its 1e-10 floor)
    Builder b(seed, "masked_mean", "masked_mean");
    b.uniform("loss", {8, 512}, 0.5, 10.0);
    std::vector<float> &mask = b.f32("mask", {8, 512}, [](Rng &r) { return r.unit() < 0.9 ? 1 : 0; });
    std::fill(mask.begin() + 5 * 512, mask.begin() + 6 * 512, 0.0f);
    b.c.desc = "loss[8,512] row 5 masked";
    cases.push_back(finish(b));
  }
}

void backwardCases(uint64_t seed, std::vector<Case> &cases) {
  { // 256 rows into 100 vocabulary rows (repeats; rows 7 and 13 get none)
    Builder b(seed, "embedding_bwd", "embedding_bwd");
    std::vector<int32_t> &tok = b.ids("tokens", {256}, 100);
    for (int32_t &t : tok)
      if (t == 7 || t == 13)
        t = 8;
    b.normal("dy", {256, 768});
    b.c.params = {{"vocab", 100}};
    b.c.desc = "dy[256,768] vocab 100";
    cases.push_back(finish(b));
  }
  // unary backward: x in the op's domain, y = f(x) (double, rounded as the forward stores it).
  for (const auto &[name, op] : kUnaryOps) {
    const std::string opName = name;
    const cpu::UnaryOp unaryOp = op;
    Builder b(seed, "unary_bwd." + opName, "unary_bwd");
    std::vector<float> &x = b.f32("x", {16, 512}, [&](Rng &r) { return unaryInput(opName, r); });
    std::vector<double> xd(x.begin(), x.end()), yd(x.size());
    cpu::unary<double>(unaryOp, xd.data(), int64_t(xd.size()), unaryAlpha(opName), yd.data());
    b.values("y", {16, 512}, std::vector<float>(yd.begin(), yd.end()));
    b.normal("dy", {16, 512});
    b.c.params = {{"op", opName}, {"alpha", unaryAlpha(opName)}};
    b.c.desc = "x[16,512]" + (unaryAlpha(opName) != 0 ? " alpha " + fmtNum(unaryAlpha(opName)) : "");
    cases.push_back(finish(b));
  }
  for (const char *kind : {"rms_norm_bwd", "layer_norm_bwd"}) {
    Builder b(seed, kind, kind);
    b.normal("x", {2, 64, 768}, 1.5, 0.3);
    b.uniform("w", {768}, 0.5, 1.5);
    b.normal("dy", {2, 64, 768});
    const double eps = std::string(kind) == "rms_norm_bwd" ? 1e-6 : 1e-5;
    b.c.params = {{"eps", eps}};
    b.c.desc = "x[2,64,768] eps " + fmtNum(eps);
    cases.push_back(finish(b));
  }
  // rms_norm_bwd's one-pass kernel up to 1024 columns (rows not a multiple of a block's 128,
  // lanes with and without a last column) and its two-kernel form above; layer_norm_bwd at other
  // widths.
  const std::pair<const char *, Shape> wide[] = {{"rms_norm_bwd", {1, 130, 808}},
                                                 {"rms_norm_bwd", {1, 12, 2048}},
                                                 {"layer_norm_bwd", {1, 24, 300}},
                                                 {"layer_norm_bwd", {1, 12, 1000}}};
  for (const auto &[kind, xs] : wide) {
    Builder b(seed, std::string(kind) + ".d" + std::to_string(xs[2]), kind);
    b.normal("x", xs, 1.5, 0.3);
    b.uniform("w", {xs[2]}, 0.5, 1.5);
    b.normal("dy", xs);
    const double eps = std::string(kind) == "rms_norm_bwd" ? 1e-6 : 1e-5;
    b.c.params = {{"eps", eps}};
    b.c.desc = "x" + shapeText(xs) + " eps " + fmtNum(eps);
    cases.push_back(finish(b));
  }
  {
    Builder b(seed, "causal_conv_bwd", "causal_conv_bwd");
    b.normal("x", {2, 64, 768});
    b.normal("kernel", {4, 768}, 0.5);
    b.normal("dy", {2, 64, 768});
    b.c.desc = "x[2,64,768] width 4";
    cases.push_back(finish(b));
  }
  {
    Builder b(seed, "causal_conv_bwd.hist", "causal_conv_bwd");
    b.normal("x", {2, 24, 64});
    b.normal("kernel", {4, 64}, 0.5);
    b.normal("dy", {2, 24, 64});
    b.normal("history", {2, 3, 64});
    b.c.params = {{"history", true}};
    b.c.desc = "x[2,24,64] width 4, history";
    cases.push_back(finish(b));
  }
  for (const Shape &to : {Shape{64, 1}, Shape{96}, Shape{8, 1, 96}, Shape{}}) {
    std::string name = "sum_to.";
    for (int64_t d : to)
      name += std::to_string(d) + "x";
    name = to.empty() ? "sum_to.scalar" : name.substr(0, name.size() - 1);
    Builder b(seed, name, "sum_to");
    b.normal("x", {8, 64, 96}, 1.0, 0.2);
    b.c.params = {{"to", to}};
    b.c.desc = "[8,64,96] to " + shapeText(to);
    cases.push_back(finish(b));
  }
  {
    Builder b(seed, "softmax_xent_bwd", "softmax_xent_bwd");
    b.normal("logits", {4, 32000}, 3.0);
    b.targets({4}, 32000, 1, 1);
    b.uniform("dloss", {4}, 0.1, 1.0);
    b.c.params = {{"ignore", 1}};
    b.c.desc = "logits[4,32000] 1 ignored";
    cases.push_back(finish(b));
  }
  {
    Builder b(seed, "masked_mean_bwd", "masked_mean_bwd");
    std::vector<float> &mask = b.f32("mask", {8, 512}, [](Rng &r) { return r.unit() < 0.9 ? 1 : 0; });
    std::fill(mask.begin() + 2 * 512, mask.begin() + 3 * 512, 0.0f);
    b.uniform("dout", {}, 0.5, 2.0);
    b.c.desc = "mask[8,512] row 2 masked";
    cases.push_back(finish(b));
  }
  {
    Builder b(seed, "accumulate", "accumulate");
    b.normal("acc", {20011}, 0.01);
    b.normal("g", {20011}, 0.01);
    const double scale = double(float(b.rng.uniform(0.1, 1.0))); // the device gets a float
    b.c.params = {{"scale", scale}};
    b.c.desc = "n 20011 scale " + fmtNum(scale);
    cases.push_back(finish(b));
  }
}

// One inner-loop pair (forward, backward) of n mini-batches of 16 tokens, batch B, H heads, head
// dim f, remat group `group`. fp32 cases run the exact kernels; bf16 cases (".tc", bf16-exact
// inputs) the tensor-core ones (InnerLoopMath::TensorCore). tokenMajor (".tm"): q, k, v, eta, dO
// and the outputs o, dq, dk, dv, deta in InnerLoopShape's token-major layout.
void innerLoopPair(uint64_t seed, std::vector<Case> &cases, Mode mode, int64_t f, int64_t B,
                   int64_t H, int64_t n, int64_t group, bool tokenMajor) {
  const int64_t mb = 16;
  const std::string suffix = std::string(mode == Mode::bf16 ? ".tc" : "") +
                             (tokenMajor ? ".tm" : "") + ".f" + std::to_string(f);
  const Shape tok = tokenMajor ? Shape{B, n, mb, H, f} : Shape{n, B, H, mb, f};
  const Shape eta = tokenMajor ? Shape{B, n, mb, H} : Shape{n, B, H, mb};
  const std::string desc = "q" + shapeText(tok) + " group " + std::to_string(group) +
                           (tokenMajor ? " token major" : "");
  const json params = tokenMajor ? json{{"group", group}, {"eps", 1e-6}, {"token_major", true}}
                                 : json{{"group", group}, {"eps", 1e-6}};
  // Inputs in operand order, realistic ranges: W0 ~ N(0, 0.02), learning rates eta ~ 1/f,
  // token weights tau ~ 1/(i+1), LayerNorm gamma ~ 1, lambda ~ 0.
  auto inputs = [&](Builder &b, bool withState) {
    if (withState) {
      b.normal("W0", {B, H, f, f}, 0.02);
      b.normal("b0", {B, H, f}, 0.02);
    }
    b.normal("q", tok);
    b.normal("k", tok);
    b.normal("v", tok);
    b.uniform("eta", eta, 0.2 / double(f), 1.0 / double(f));
    b.f32("tau", {mb},
          [i = 0](Rng &r) mutable { return 1.0 / double(++i) + r.uniform(-0.01, 0.01); });
    b.uniform("tau_last", {}, 0.05, 0.1);
    b.uniform("gamma", {H, f}, 0.8, 1.2);
    b.uniform("lambda", {H, f}, -0.1, 0.1);
    b.c.params = params;
    b.c.desc = desc;
  };
  {
    Builder b(seed, "inner_loop_fwd" + suffix, "inner_loop_fwd", mode);
    inputs(b, true);
    cases.push_back(finish(b));
  }
  {
    // The checkpoints the forward writes (in double from the same kind of inputs, rounded to
    // fp32 as the device stores them), then random output cotangents.
    Builder fwd(seed, "inner_loop_bwd.state" + suffix, "inner_loop_fwd", mode);
    inputs(fwd, true);
    Case state = finish(fwd);
    Builder b(seed, "inner_loop_bwd" + suffix, "inner_loop_bwd", mode);
    for (const char *name : {"ckpt_W", "ckpt_b"}) {
      const Tensor &t = state.output(name);
      b.values(name, t.shape, std::vector<float>(t.f64.begin(), t.f64.end()));
    }
    for (const char *name : {"q", "k", "v", "eta", "tau", "tau_last", "gamma", "lambda"}) {
      const Tensor &t = state.input(name);
      b.values(name, t.shape, t.f32);
    }
    b.normal("dW_final", {B, H, f, f}, 0.1);
    b.normal("db_final", {B, H, f}, 0.1);
    b.normal("dO", tok, 0.1);
    b.c.params = params;
    b.c.desc = desc;
    cases.push_back(finish(b));
    if (mode == Mode::bf16 && (tokenMajor || f != 64)) {
      // The same backward reading the inner-loop cache of bf16 plans, which the device's
      // forward writes first from the same inputs (W0, b0 = the first checkpoint): in the
      // layout of real plans (token major) and at head dim 96.
      Case cached = cases.back();
      cached.name = "inner_loop_bwd.cache" + suffix;
      cached.params["cache"] = true;
      cached.desc += " cache";
      cases.push_back(std::move(cached));
    }
  }
}

// The fused inner loop: n 8 mini-batches of 16 tokens, remat group 4 (2 groups); in fp32 3 heads
// and batch 2 at head dim 64, else 1; bf16 cases (smaller files) 2 heads, batch 1. Then the
// token-major layout at head dim 64 in both modes, as small as the files' budget asks (the f x f
// state dominates them): fp32 batch 2, 2 heads (every stride of the layout differs from the
// mini-batch-major one), 2 mini-batches in one group; bf16 batch 1, 2 heads, 4 mini-batches in
// 2 groups.
void innerLoopCases(uint64_t seed, std::vector<Case> &cases) {
  for (Mode mode : {Mode::fp32, Mode::bf16})
    for (int64_t f : {64, 96}) {
      const int64_t B = f == 64 && mode == Mode::fp32 ? 2 : 1, H = mode == Mode::fp32 ? 3 : 2;
      innerLoopPair(seed, cases, mode, f, B, H, 8, 4, false);
    }
  innerLoopPair(seed, cases, Mode::fp32, 64, 2, 2, 2, 2, true);
  innerLoopPair(seed, cases, Mode::bf16, 64, 1, 2, 4, 2, true);
}

// fused_elementwise: step chains like those ttt-fuse-elementwise forms (slots: inputs, then one
// per step).
void fusedCases(uint64_t seed, std::vector<Case> &cases) {
  auto step = [](const char *op, std::vector<int64_t> args, double alpha = 0.0) {
    while (args.size() < 3)
      args.push_back(-1);
    return json{{"op", op}, {"args", args}, {"alpha", alpha}};
  };
  const Shape full = {16, 768};
  { // SwiGLU: silu(gate) * up
    Builder b(seed, "fused_elementwise.swiglu", "fused_elementwise");
    b.normal("gate", full, 2.0);
    b.normal("up", full);
    b.c.params = {{"shape", full}, {"steps", {step("silu", {0}), step("mul", {2, 1})}}};
    b.c.desc = "[16,768] silu mul";
    cases.push_back(finish(b));
  }
  { // a norm tail with broadcast operands: sigmoid(x * s * w + 0.5)
    Builder b(seed, "fused_elementwise.broadcast", "fused_elementwise");
    b.normal("x", full);
    b.uniform("w", {768}, 0.5, 1.5);
    b.uniform("s", {16, 1}, 0.5, 2.0);
    b.c.params = {{"shape", full},
                  {"steps",
                   {step("mul", {0, 2}), step("mul", {3, 1}), step("add_scalar", {4}, 0.5),
                    step("sigmoid", {5})}}};
    b.c.desc = "[16,768] [768] [16,1] 4 steps";
    cases.push_back(finish(b));
  }
  { // SwiGLU backward: silu_bwd(gate, silu(gate), dy * up)
    Builder b(seed, "fused_elementwise.swiglu_bwd", "fused_elementwise");
    b.normal("gate", full, 2.0);
    b.normal("dy", full);
    b.normal("up", full);
    b.c.params = {{"shape", full},
                  {"steps", {step("silu", {0}), step("mul", {1, 2}), step("silu_bwd", {0, 3, 4})}}};
    b.c.desc = "[16,768] silu mul silu_bwd";
    cases.push_back(finish(b));
  }
  { // every other op once, on positive inputs
    Builder b(seed, "fused_elementwise.chain", "fused_elementwise");
    b.uniform("p", full, 0.5, 3.0);
    b.uniform("q", {768}, 0.5, 2.0);
    b.normal("r", full);
    b.c.params = {{"shape", full},
                  {"steps",
                   {step("div", {0, 1}),               // 3
                    step("log", {3}),                  // 4
                    step("sqrt", {0}),                 // 5
                    step("max", {4, 5}),               // 6
                    step("sub", {6, 2}),               // 7
                    step("rsqrt", {0}),                // 8
                    step("mul", {7, 8}),               // 9
                    step("gelu_tanh", {9}),            // 10
                    step("exp", {8}),                  // 11
                    step("reciprocal", {11}),          // 12
                    step("add", {10, 12}),             // 13
                    step("neg", {13}),                 // 14
                    step("relu", {14}),                // 15
                    step("scale", {2}, -0.75),         // 16
                    step("add", {15, 16}),             // 17
                    step("gelu_tanh_bwd", {9, 10, 17}) // 18
                   }}};
    b.c.desc = "[16,768] [768] 16 steps";
    cases.push_back(finish(b));
  }
  { // unary backward steps of each kind (the remaining ops' _bwd)
    Builder b(seed, "fused_elementwise.unary_bwd", "fused_elementwise");
    b.uniform("x", full, 0.2, 3.0);
    b.normal("dy", full);
    b.c.params = {{"shape", full},
                  {"steps",
                   {step("exp", {0}),                     // 2
                    step("exp_bwd", {0, 2, 1}),            // 3
                    step("rsqrt", {0}),                   // 4
                    step("rsqrt_bwd", {0, 4, 3}),          // 5
                    step("sigmoid", {0}),                 // 6
                    step("sigmoid_bwd", {0, 6, 5}),        // 7
                    step("log", {0}),                     // 8
                    step("log_bwd", {0, 8, 7}),            // 9
                    step("sqrt", {0}),                    // 10
                    step("sqrt_bwd", {0, 10, 9}),          // 11
                    step("reciprocal", {0}),              // 12
                    step("reciprocal_bwd", {0, 12, 11})}}}; // 13
    b.c.desc = "[16,768] 12 steps (_bwd)";
    cases.push_back(finish(b));
  }
}

// The tied lm_head + cross-entropy around the xent chunk kernels: vocab 32000 in chunks of 4096
// (the last one partial), 8 rows, 2 of them ignored. The hidden size (4) only feeds the host's
// logits (std ~2); it is small so that the table and dtable stay small files. bf16 mode: the
// kernels' fp32 exp (bf16 plans), on a vocabulary of 9000 (three chunks) for smaller files.
void xentCases(uint64_t seed, std::vector<Case> &cases) {
  for (Mode mode : {Mode::fp32, Mode::bf16}) {
    const int64_t n = 8, dim = 4, vocab = mode == Mode::bf16 ? 9000 : 32000, chunk = 4096;
    const std::string suffix = mode == Mode::bf16 ? ".bf16" : "";
    auto inputs = [&](Builder &b) {
      b.normal("h", {n, dim});
      b.normal("table", {vocab, dim});
      b.targets({n}, vocab, 1, 2);
      b.c.params = {{"ignore", 1}, {"chunk", chunk}};
      b.c.desc = "h[8,4] table[" + std::to_string(vocab) + ",4] chunk 4096";
    };
    {
      Builder b(seed, "lm_head_xent" + suffix, "lm_head_xent", mode);
      inputs(b);
      cases.push_back(finish(b));
    }
    {
      Builder b(seed, "lm_head_xent_bwd" + suffix, "lm_head_xent_bwd", mode);
      inputs(b);
      // The forward's lse (rounded as the device stores it), random incoming loss gradients.
      Case fwd = b.c;
      fwd.kind = "lm_head_xent";
      CpuOutputs<double> f = evalOnCpu<double>(fwd);
      const std::vector<double> &lse = f.values[2];
      b.values("lse", {n}, std::vector<float>(lse.begin(), lse.end()));
      b.uniform("dloss", {n}, 0.05, 0.2);
      cases.push_back(finish(b));
    }
  }
}

// matmul (the hook for runtime/backend/cuda/Matmul.h): fp32 and bf16 operands (bf16 cases get
// bf16-exact values, so the reference is exact for what the kernel multiplies).
void matmulCases(uint64_t seed, std::vector<Case> &cases) {
  for (Mode mode : {Mode::fp32, Mode::bf16}) {
    const std::string m = modeName(mode);
    {
      Builder b(seed, "matmul." + m + ".plain", "matmul", mode);
      b.normal("a", {64, 768});
      b.normal("b", {768, 128}, 1.0 / std::sqrt(768.0));
      b.c.params = {{"trans_a", false}, {"trans_b", false}};
      b.c.desc = "[64,768] x [768,128]";
      cases.push_back(finish(b));
    }
    {
      Builder b(seed, "matmul." + m + ".batched_tb", "matmul", mode);
      b.normal("a", {4, 64, 96});
      b.normal("b", {4, 80, 96}, 0.1);
      b.c.params = {{"trans_a", false}, {"trans_b", true}};
      b.c.desc = "[4,64,96] x [4,80,96]^T";
      cases.push_back(finish(b));
    }
    {
      Builder b(seed, "matmul." + m + ".shared_ta", "matmul", mode);
      b.normal("a", {3, 96, 48});
      b.normal("b", {96, 40}, 0.1);
      b.c.params = {{"trans_a", true}, {"trans_b", false}};
      b.c.desc = "[3,96,48]^T x [96,40]";
      cases.push_back(finish(b));
    }
  }
}
} // namespace

std::vector<Case> makeCases(uint64_t seed) {
  std::vector<Case> cases;
  forwardCases(seed, cases);
  backwardCases(seed, cases);
  innerLoopCases(seed, cases);
  fusedCases(seed, cases);
  xentCases(seed, cases);
  matmulCases(seed, cases);
  return cases;
}

// --- files --------------------------------------------------------------------------------------
namespace {
constexpr const char *kFormat = "ttt-kernel-check";
constexpr int kFormatVersion = 1;

size_t elementBytes(DType d) { return d == DType::f64 ? 8 : 4; }
const void *tensorData(const Tensor &t) {
  return t.dtype == DType::f32   ? static_cast<const void *>(t.f32.data())
         : t.dtype == DType::i32 ? static_cast<const void *>(t.i32.data())
                                 : static_cast<const void *>(t.f64.data());
}
void *resizeFor(Tensor &t) {
  const size_t n = size_t(t.size());
  if (t.dtype == DType::f32) {
    t.f32.resize(n);
    return t.f32.data();
  }
  if (t.dtype == DType::i32) {
    t.i32.resize(n);
    return t.i32.data();
  }
  t.f64.resize(n);
  return t.f64.data();
}
DType dtypeByName(const std::string &s) {
  if (s == "f32")
    return DType::f32;
  if (s == "i32")
    return DType::i32;
  if (s == "f64")
    return DType::f64;
  throw std::runtime_error("unknown dtype '" + s + "'");
}
std::string hex64(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}
std::string fileName(size_t index, const std::string &name) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%03zu-", index);
  std::string safe;
  for (char ch : name)
    safe += std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' ? ch : '-';
  return std::string("cases/") + buf + safe + ".bin";
}
} // namespace

uint64_t writeCases(const std::string &dir, const std::vector<Case> &cases, uint64_t seed,
                    const json &meta) {
  std::error_code ec;
  const fs::path root(dir), index = root / "index.json";
  if (fs::exists(root, ec)) {
    if (!fs::is_directory(root, ec))
      throw std::runtime_error(dir + ": exists and is not a directory");
    if (!fs::is_empty(root, ec) && !fs::exists(index, ec))
      throw std::runtime_error(dir + ": not empty and not a kernel-check directory (no index.json); "
                               "give a new or empty directory");
    fs::remove_all(root / "cases", ec);
    fs::remove(index, ec);
  }
  fs::create_directories(root / "cases", ec);
  if (ec)
    throw std::runtime_error(dir + ": cannot create the directory: " + ec.message());

  json list = json::array();
  uint64_t total = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case &c = cases[i];
    const std::string file = fileName(i, c.name);
    std::vector<char> bytes;
    auto describe = [&](const std::vector<Tensor> &tensors) {
      json arr = json::array();
      for (const Tensor &t : tensors) {
        const size_t n = size_t(t.size()) * elementBytes(t.dtype);
        arr.push_back({{"name", t.name},
                       {"dtype", dtypeName(t.dtype)},
                       {"shape", t.shape},
                       {"offset", bytes.size()},
                       {"bytes", n}});
        const char *p = static_cast<const char *>(tensorData(t));
        bytes.insert(bytes.end(), p, p + n);
      }
      return arr;
    };
    json in = describe(c.inputs), out = describe(c.outputs);
    const fs::path path = root / file;
    std::ofstream os(path, std::ios::binary);
    os.write(bytes.data(), std::streamsize(bytes.size()));
    if (!os)
      throw std::runtime_error(path.string() + ": cannot write");
    total += bytes.size();
    list.push_back({{"name", c.name},
                    {"kind", c.kind},
                    {"mode", modeName(c.mode)},
                    {"tolerance", tolerance(c.mode)},
                    {"desc", c.desc},
                    {"params", c.params},
                    {"file", file},
                    {"bytes", bytes.size()},
                    {"fnv1a64", hex64(fnv1a64(bytes.data(), bytes.size()))},
                    {"inputs", in},
                    {"outputs", out}});
  }
  json doc = {{"format", kFormat},
              {"version", kFormatVersion},
              {"seed", seed},
              {"created_by", meta},
              {"tolerances", {{"fp32", tolerance(Mode::fp32)}, {"bf16", tolerance(Mode::bf16)}}},
              {"cases", list}};
  const std::string text = doc.dump(1);
  std::ofstream os(index);
  os << text << "\n";
  if (!os)
    throw std::runtime_error(index.string() + ": cannot write");
  return total + text.size() + 1;
}

std::vector<Case> readCases(const std::string &dir) {
  const fs::path root(dir), index = root / "index.json";
  std::ifstream is(index);
  if (!is)
    throw std::runtime_error(index.string() +
                             ": cannot open; write the cases with `ttt-run kernel-check prepare " +
                             dir + "`");
  json doc;
  try {
    doc = json::parse(is);
  } catch (const std::exception &e) {
    throw std::runtime_error(index.string() + ": not valid JSON: " + e.what());
  }
  if (doc.value("format", "") != kFormat || doc.value("version", 0) != kFormatVersion)
    throw std::runtime_error(index.string() + ": not a kernel-check index of version " +
                             std::to_string(kFormatVersion) + "; prepare it again");
  std::vector<Case> cases;
  try {
    for (const json &j : doc.at("cases")) {
      Case c;
      c.name = j.at("name").get<std::string>();
      c.kind = j.at("kind").get<std::string>();
      const std::string mode = j.at("mode").get<std::string>();
      if (mode != "fp32" && mode != "bf16")
        throw std::runtime_error("case " + c.name + ": unknown mode '" + mode + "'");
      c.mode = mode == "bf16" ? Mode::bf16 : Mode::fp32;
      c.desc = j.value("desc", "");
      c.params = j.at("params");
      const fs::path path = root / j.at("file").get<std::string>();
      std::ifstream bin(path, std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(bin)),
                              std::istreambuf_iterator<char>());
      if (!bin.good() && !bin.eof())
        throw std::runtime_error(path.string() + ": cannot read");
      if (bytes.size() != j.at("bytes").get<size_t>())
        throw std::runtime_error(path.string() + ": " + std::to_string(bytes.size()) +
                                 " bytes, the index says " +
                                 std::to_string(j.at("bytes").get<size_t>()) + "; copy it again");
      if (hex64(fnv1a64(bytes.data(), bytes.size())) != j.at("fnv1a64").get<std::string>())
        throw std::runtime_error(path.string() + ": checksum mismatch; copy it again");
      auto load = [&](const json &arr, std::vector<Tensor> &into) {
        for (const json &tj : arr) {
          Tensor t;
          t.name = tj.at("name").get<std::string>();
          t.dtype = dtypeByName(tj.at("dtype").get<std::string>());
          t.shape = tj.at("shape").get<Shape>();
          const size_t off = tj.at("offset").get<size_t>(), n = tj.at("bytes").get<size_t>();
          if (n != size_t(t.size()) * elementBytes(t.dtype) || off + n > bytes.size())
            throw std::runtime_error(path.string() + ": tensor '" + t.name +
                                     "' does not fit its shape or the file");
          std::memcpy(resizeFor(t), bytes.data() + off, n);
          into.push_back(std::move(t));
        }
      };
      load(j.at("inputs"), c.inputs);
      load(j.at("outputs"), c.outputs);
      for (const Tensor &t : c.outputs)
        if (t.dtype != DType::f64)
          throw std::runtime_error("case " + c.name + ": reference '" + t.name + "' is not f64");
      cases.push_back(std::move(c));
    }
  } catch (const json::exception &e) {
    throw std::runtime_error(index.string() + ": malformed: " + e.what());
  }
  return cases;
}

// --- comparison ---------------------------------------------------------------------------------
CaseResult judge(const Case &c, const std::vector<std::vector<float>> &first,
                 const std::vector<std::vector<float>> *second) {
  CaseResult r;
  r.name = c.name;
  r.kind = c.kind;
  r.desc = c.desc;
  r.mode = c.mode;
  r.tolerance = tolerance(c.mode);
  const double inf = std::numeric_limits<double>::infinity();
  bool good = true;
  if (first.size() != c.outputs.size() || (second && second->size() != c.outputs.size())) {
    r.status = Status::fail;
    r.worstError = inf;
    r.note = "the device gave " + std::to_string(first.size()) + " outputs, expected " +
             std::to_string(c.outputs.size());
    return r;
  }
  for (size_t i = 0; i < c.outputs.size(); ++i) {
    const Tensor &ref = c.outputs[i];
    const std::vector<float> &got = first[i];
    OutputResult o;
    o.name = ref.name;
    if (int64_t(got.size()) != ref.size()) {
      o.error = std::to_string(got.size()) + " values, expected " + std::to_string(ref.size());
      o.relError = inf;
    } else {
      long double diff = 0, norm = 0;
      for (size_t e = 0; e < got.size(); ++e) {
        const long double x = ref.f64[e];
        norm += x * x;
        if (!std::isfinite(got[e])) {
          ++o.nonFinite;
          continue;
        }
        const long double d = (long double)got[e] - x;
        diff += d * d;
      }
      o.refNorm = double(std::sqrt(norm));
      o.absolute = norm == 0;
      o.relError = o.nonFinite  ? inf
                   : o.absolute ? double(std::sqrt(diff))
                                : double(std::sqrt(diff) / std::sqrt(norm));
      if (o.nonFinite)
        o.error = std::to_string(o.nonFinite) + " NaN/Inf values";
    }
    if (second) {
      const std::vector<float> &again = (*second)[i];
      o.bitwise = again.size() == got.size() &&
                  std::memcmp(again.data(), got.data(), got.size() * sizeof(float)) == 0;
    }
    const bool outputGood = o.error.empty() && o.relError <= r.tolerance && o.bitwise;
    // The worst output: the largest error (inf for a bad one; the first of equals).
    if (r.worstOutput.empty() || o.relError > r.worstError) {
      r.worstOutput = o.name;
      r.worstError = o.relError;
    }
    if (!o.error.empty() && r.note.empty())
      r.note = o.name + ": " + o.error;
    if (!o.bitwise) {
      r.deterministic = false;
      if (r.note.empty())
        r.note = o.name + ": the two runs differ";
    }
    if (o.error.empty() && !(o.relError <= r.tolerance) && r.note.empty())
      r.note = o.name + ": rel error " + fmtNum(o.relError) + " > " + fmtNum(r.tolerance);
    good &= outputGood;
    r.outputs.push_back(o);
  }
  r.status = good ? Status::pass : Status::fail;
  return r;
}

CaseResult checkCase(const Case &c, Device &device, int runs) {
  const std::string why = device.unsupported(c);
  if (!why.empty()) {
    CaseResult r;
    r.name = c.name;
    r.kind = c.kind;
    r.desc = c.desc;
    r.mode = c.mode;
    r.tolerance = tolerance(c.mode);
    r.status = Status::skip;
    r.note = why;
    return r;
  }
  std::vector<std::vector<float>> first, second;
  std::string err;
  try {
    err = device.run(c, first);
    if (err.empty() && runs > 1)
      err = device.run(c, second);
  } catch (const std::exception &e) {
    err = e.what();
  }
  if (!err.empty()) {
    CaseResult r;
    r.name = c.name;
    r.kind = c.kind;
    r.desc = c.desc;
    r.mode = c.mode;
    r.tolerance = tolerance(c.mode);
    r.status = Status::fail;
    r.worstError = std::numeric_limits<double>::infinity();
    r.note = err;
    return r;
  }
  return judge(c, first, runs > 1 ? &second : nullptr);
}

Summary summarize(const std::vector<CaseResult> &results) {
  Summary s;
  for (const CaseResult &r : results) {
    if (r.status == Status::skip) {
      ++s.skip;
      continue;
    }
    (r.status == Status::pass ? s.pass : s.fail) += 1;
    s.deterministic &= r.deterministic;
    const int m = r.mode == Mode::bf16 ? 1 : 0;
    if (s.worstCase[m].empty() || r.worstError > s.worstError[m] || std::isnan(r.worstError)) {
      s.worstError[m] = r.worstError;
      s.worstCase[m] = r.name;
    }
  }
  return s;
}

namespace {
std::string errText(double e) {
  if (std::isinf(e))
    return "inf";
  if (std::isnan(e))
    return "nan";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", e);
  return buf;
}
} // namespace

std::string tableHeader() {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-28s %-4s  %-38s %-10s %9s %7s %-7s %s", "case", "mode",
                "shapes", "worst", "rel.err", "tol", "bitwise", "result");
  return buf;
}

std::string tableLine(const CaseResult &r) {
  char buf[512];
  const bool ran = r.status != Status::skip;
  std::string desc = r.desc.size() > 38 ? r.desc.substr(0, 37) + "~" : r.desc;
  const std::string err = ran ? errText(r.worstError) : "-", tol = errText(r.tolerance);
  std::snprintf(buf, sizeof buf, "%-28s %-4s  %-38s %-10s %9s %7s %-7s %s", r.name.c_str(),
                modeName(r.mode), desc.c_str(), ran ? r.worstOutput.c_str() : "-", err.c_str(),
                tol.c_str(),
                !ran || r.outputs.empty() ? "-" : r.deterministic ? "yes" : "NO",
                statusName(r.status));
  std::string line = buf;
  if (!r.note.empty() && r.status != Status::pass)
    line += "  (" + r.note + ")";
  return line;
}

std::string summaryLine(const Summary &s) {
  std::ostringstream os;
  os << "kernel-check: " << (s.pass + s.fail + s.skip) << " cases: " << s.pass << " pass, "
     << s.fail << " FAIL, " << s.skip << " skipped";
  for (int m = 0; m < 2; ++m)
    if (!s.worstCase[m].empty())
      os << "; worst " << (m ? "bf16 " : "fp32 ") << errText(s.worstError[m]) << " ("
         << s.worstCase[m] << ", tol " << errText(tolerance(m ? Mode::bf16 : Mode::fp32)) << ")";
  os << "; bitwise deterministic: " << (s.deterministic ? "yes" : "NO");
  os << (s.fail ? " -- FAILED" : " -- ALL PASS");
  return os.str();
}

nlohmann::ordered_json toJson(const std::vector<CaseResult> &results, const Summary &s) {
  using oj = nlohmann::ordered_json;
  auto num = [](double v) -> oj { return std::isfinite(v) ? oj(v) : oj(nullptr); };
  oj cases = oj::array();
  for (const CaseResult &r : results) {
    oj outs = oj::array();
    for (const OutputResult &o : r.outputs)
      outs.push_back({{"name", o.name},
                      {"rel_error", num(o.relError)},
                      {"ref_norm", o.refNorm},
                      {"absolute", o.absolute},
                      {"non_finite", o.nonFinite},
                      {"bitwise", o.bitwise},
                      {"error", o.error}});
    cases.push_back({{"name", r.name},
                     {"kind", r.kind},
                     {"mode", modeName(r.mode)},
                     {"desc", r.desc},
                     {"tolerance", r.tolerance},
                     {"status", statusName(r.status)},
                     {"worst_output", r.worstOutput},
                     {"rel_error", num(r.worstError)},
                     {"deterministic", r.deterministic},
                     {"note", r.note},
                     {"outputs", outs}});
  }
  oj summary = {{"pass", s.pass},
                {"fail", s.fail},
                {"skip", s.skip},
                {"deterministic", s.deterministic},
                {"worst_fp32", {{"case", s.worstCase[0]}, {"rel_error", num(s.worstError[0])}}},
                {"worst_bf16", {{"case", s.worstCase[1]}, {"rel_error", num(s.worstError[1])}}}};
  return {{"summary", summary}, {"cases", cases}};
}
} // namespace ttt::kcheck
