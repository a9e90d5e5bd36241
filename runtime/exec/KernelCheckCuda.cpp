// The CUDA side of `ttt-run kernel-check check` (KernelCheck.h): runs one case on the launchers
// of runtime/backend/cuda/Kernels.h. Per run: every input uploaded to a fresh device buffer, every
// output buffer filled with NaN bytes first (0xff) so that an element a kernel fails to write
// shows up as NaN, outputs that a launcher updates in place (insert, accumulate) copied from
// their input instead; then the launcher(s), a synchronize, and the download.
// Matmul cases go through the runner's cuBLASLt launcher (Matmul.h) in fp32 and bf16 modes.
#include "runtime/exec/KernelCheck.h"

#include "runtime/backend/cuda/Kernels.h"
#include "runtime/backend/cuda/Matmul.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>

namespace ttt::kcheck {
namespace {
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
void check(cudaError_t e, const std::string &what) {
  if (e != cudaSuccess)
    throw CudaError(what + ": " + cudaGetErrorString(e));
}

// One device allocation, freed with its owner.
class DeviceBuffer {
public:
  explicit DeviceBuffer(size_t bytes) : bytes_(std::max<size_t>(bytes, 8)) {
    check(cudaMalloc(&ptr_, bytes_), "cudaMalloc(" + std::to_string(bytes_) + ")");
  }
  ~DeviceBuffer() {
    if (ptr_)
      cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  void *get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

private:
  void *ptr_ = nullptr;
  size_t bytes_ = 0;
};

void upload(void *dst, const void *src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "upload");
}
void download(void *dst, const void *src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "download");
}

// Device copies of a case's inputs and outputs, by name.
class CaseBuffers {
public:
  explicit CaseBuffers(const Case &c) : c_(c) {
    for (const Tensor &t : c.inputs) {
      const size_t bytes = size_t(t.size()) * 4;
      auto &buf = inputs_[t.name] = std::make_unique<DeviceBuffer>(bytes);
      upload(buf->get(), t.dtype == DType::i32 ? static_cast<const void *>(t.i32.data())
                                               : static_cast<const void *>(t.f32.data()),
             bytes);
    }
    for (const Tensor &t : c.outputs) {
      auto &buf = outputs_[t.name] = std::make_unique<DeviceBuffer>(size_t(t.size()) * 4);
      check(cudaMemset(buf->get(), 0xff, buf->bytes()), "cudaMemset");
    }
  }
  const float *in(const std::string &name) const {
    return static_cast<const float *>(find(inputs_, name, "input")->get());
  }
  const int32_t *ids(const std::string &name) const {
    return static_cast<const int32_t *>(find(inputs_, name, "input")->get());
  }
  float *out(const std::string &name) const {
    return static_cast<float *>(find(outputs_, name, "output")->get());
  }
  // An output that the launcher updates in place, starting from an input's values.
  float *outFrom(const std::string &name, const std::string &input) const {
    const Tensor &t = c_.input(input);
    float *o = out(name);
    check(cudaMemcpy(o, in(input), size_t(t.size()) * 4, cudaMemcpyDeviceToDevice), "copy");
    return o;
  }
  // Scratch memory owned for the run.
  void *scratch(size_t bytes) {
    scratch_.push_back(std::make_unique<DeviceBuffer>(bytes));
    return scratch_.back()->get();
  }
  void downloadAll(std::vector<std::vector<float>> &outs) const {
    outs.assign(c_.outputs.size(), {});
    for (size_t i = 0; i < c_.outputs.size(); ++i) {
      const Tensor &t = c_.outputs[i];
      outs[i].resize(size_t(t.size()));
      download(outs[i].data(), out(t.name), outs[i].size() * 4);
    }
  }

private:
  using Map = std::map<std::string, std::unique_ptr<DeviceBuffer>>;
  const DeviceBuffer *find(const Map &m, const std::string &name, const char *what) const {
    auto it = m.find(name);
    if (it == m.end())
      throw std::invalid_argument("case " + c_.name + ": no " + what + " '" + name + "'");
    return it->second.get();
  }
  const Case &c_;
  Map inputs_, outputs_;
  std::vector<std::unique_ptr<DeviceBuffer>> scratch_;
};

template <typename E> E byName(bool (*lookup)(const std::string &, E &), const std::string &name) {
  E op{};
  if (!lookup(name, op))
    throw std::invalid_argument("unknown op '" + name + "'");
  return op;
}

// (outer, extent, inner) of `shape` around `axis`.
void split(const Shape &shape, int axis, int64_t &outer, int64_t &extent, int64_t &inner) {
  if (axis < 0 || axis >= int(shape.size()))
    throw std::invalid_argument("axis outside the shape");
  outer = inner = 1;
  for (int d = 0; d < axis; ++d)
    outer *= shape[size_t(d)];
  extent = shape[size_t(axis)];
  for (size_t d = size_t(axis) + 1; d < shape.size(); ++d)
    inner *= shape[d];
}

// logits[rows, cols] = h[rows, dim] table[v0 : v0 + cols, dim]^T on the host (double sums,
// rounded to float): the chunk a GEMM would hand to the xent kernels.
std::vector<float> hostLogits(const std::vector<float> &h, const std::vector<float> &table,
                              int64_t rows, int64_t dim, int64_t v0, int64_t cols) {
  std::vector<float> logits(size_t(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < cols; ++c) {
      double s = 0;
      const float *hr = h.data() + i * dim, *er = table.data() + (v0 + c) * dim;
      for (int64_t d = 0; d < dim; ++d)
        s += double(hr[d]) * double(er[d]);
      logits[size_t(i * cols + c)] = float(s);
    }
  return logits;
}

class CudaDevice : public Device {
public:
  explicit CudaDevice(std::string description) : description_(std::move(description)) {}
  std::string description() const override { return description_; }
  std::string unsupported(const Case &) const override { return ""; }
  std::string run(const Case &c, std::vector<std::vector<float>> &outputs) override {
    try {
      check(cudaGetLastError(), "before the case"); // a sticky error from an earlier case
      CaseBuffers buf(c);
      if (c.kind == "lm_head_xent" || c.kind == "lm_head_xent_bwd")
        return lmHead(c, buf, outputs);
      launch(c, buf);
      check(cudaGetLastError(), "launch");
      check(cudaDeviceSynchronize(), "the kernels");
      buf.downloadAll(outputs);
    } catch (const std::exception &e) {
      return e.what();
    }
    return "";
  }

private:
  std::string description_;

  static void launch(const Case &c, CaseBuffers &buf) {
    const nlohmann::json &p = c.params;
    const std::string &k = c.kind;
    auto shape = [&](const char *name) { return c.input(name).shape; };
    auto num = [&](const char *key) { return p.at(key).get<double>(); };
    auto integer = [&](const char *key) { return p.at(key).get<int64_t>(); };
    auto op = [&]() { return p.at("op").get<std::string>(); };

    if (k == "embedding") {
      const Shape table = shape("table");
      cuda::embedding(buf.ids("tokens"), c.input("tokens").size(), buf.in("table"), table[1],
                      buf.out("y"));
    } else if (k == "rms_norm") {
      const Shape x = shape("x");
      cuda::rmsNorm(buf.in("x"), buf.in("w"), cpu::numElements(x) / x.back(), x.back(),
                    num("eps"), buf.out("y"));
    } else if (k == "layer_norm") {
      const Shape x = shape("x");
      cuda::layerNorm(buf.in("x"), buf.in("w"), buf.in("b"), cpu::numElements(x) / x.back(),
                      x.back(), num("eps"), buf.out("y"));
    } else if (k == "causal_conv") {
      const Shape x = shape("x");
      cuda::causalConv(buf.in("x"), buf.in("kernel"), buf.in("bias"), x[0], x[1], x[2],
                       shape("kernel")[0], buf.out("y"),
                       p.value("history", false) ? buf.in("history") : nullptr);
    } else if (k == "rope") {
      const Shape x = shape("x");
      cuda::rope(buf.in("x"), x[0], x[1], x[2], x[3], integer("period"), num("theta"),
                 num("direction"), buf.out("y"));
    } else if (k == "binary") {
      const Shape a = shape("a"), b = shape("b");
      cuda::binary(byName(cpu::binaryOpByName, op()), buf.in("a"), a, buf.in("b"), b,
                   c.output("out").shape, buf.out("out"));
    } else if (k == "unary") {
      cuda::unary(byName(cpu::unaryOpByName, op()), buf.in("x"), c.input("x").size(), num("alpha"),
                  buf.out("y"));
    } else if (k == "unary_bwd") {
      cuda::unaryBackward(byName(cpu::unaryOpByName, op()), buf.in("x"), buf.in("y"), buf.in("dy"),
                          c.input("x").size(), num("alpha"), buf.out("dx"));
    } else if (k == "reduce") {
      const Shape x = shape("x");
      cuda::reduceLast(byName(cpu::reduceOpByName, op()), buf.in("x"), cpu::numElements(x) / x.back(),
                       x.back(), buf.out("y"));
    } else if (k == "transpose") {
      cuda::transpose(buf.in("x"), shape("x"), p.at("perm").get<std::vector<int>>(),
                      buf.out("y"));
    } else if (k == "slice") {
      int64_t outer, extent, inner;
      split(shape("x"), int(integer("axis")), outer, extent, inner);
      cuda::slice(buf.in("x"), outer, extent, inner, integer("start"), integer("size"),
                  buf.out("y"));
    } else if (k == "insert") {
      int64_t outer, extent, inner;
      const int axis = int(integer("axis"));
      split(shape("dst"), axis, outer, extent, inner);
      float *dst = buf.outFrom("dst", "dst");
      cuda::insert(buf.in("src"), outer, extent, inner, integer("start"),
                   shape("src").at(size_t(axis)), dst);
    } else if (k == "tril") {
      const Shape x = shape("x");
      const int64_t n = x.back();
      cuda::tril(buf.in("x"), cpu::numElements(x) / (n * n), n, buf.out("y"));
    } else if (k == "fill") {
      cuda::fill(buf.out("y"), c.output("y").size(), num("value"));
    } else if (k == "iota") {
      cuda::iota(buf.out("y"), c.output("y").size(), num("start"));
    } else if (k == "softmax_xent") {
      const Shape l = shape("logits");
      cuda::softmaxXent(buf.in("logits"), buf.ids("targets"), cpu::numElements(l) / l.back(),
                        l.back(), integer("ignore"), buf.out("loss"), buf.out("mask"));
    } else if (k == "masked_mean") {
      const Shape l = shape("loss");
      cuda::maskedMean(buf.in("loss"), buf.in("mask"), l[0], l[1], buf.out("out"));
    } else if (k == "embedding_bwd") {
      // As CudaRunner builds it: rows of each token in increasing position.
      const std::vector<int32_t> &tokens = c.input("tokens").i32;
      const int64_t vocab = integer("vocab"), dim = shape("dy").back();
      std::vector<int64_t> offsets(size_t(vocab) + 1, 0), positions(tokens.size());
      for (int32_t t : tokens) {
        if (t < 0 || t >= vocab)
          throw std::invalid_argument("embedding_bwd: token outside the vocabulary");
        ++offsets[size_t(t) + 1];
      }
      for (size_t v = 0; v < size_t(vocab); ++v)
        offsets[v + 1] += offsets[v];
      std::vector<int64_t> next(offsets.begin(), offsets.end() - 1);
      for (size_t i = 0; i < tokens.size(); ++i)
        positions[size_t(next[size_t(tokens[i])]++)] = int64_t(i);
      auto *dOff = static_cast<int64_t *>(buf.scratch(offsets.size() * 8));
      auto *dPos = static_cast<int64_t *>(buf.scratch(positions.size() * 8));
      upload(dOff, offsets.data(), offsets.size() * 8);
      upload(dPos, positions.data(), positions.size() * 8);
      cuda::embeddingBackward(dOff, dPos, buf.in("dy"), vocab, dim, buf.out("dtable"));
    } else if (k == "rms_norm_bwd") {
      const Shape x = shape("x");
      const int64_t d = x.back(), rows = cpu::numElements(x) / d;
      auto *rs = static_cast<double *>(buf.scratch(size_t(rows) * sizeof(double)));
      cuda::rmsNormBackward(buf.in("x"), buf.in("w"), buf.in("dy"), rows, d, num("eps"),
                            buf.out("dx"), buf.out("dw"), rs);
    } else if (k == "layer_norm_bwd") {
      const Shape x = shape("x");
      const int64_t d = x.back(), rows = cpu::numElements(x) / d;
      auto *rs = static_cast<double *>(buf.scratch(size_t(2 * rows) * sizeof(double)));
      cuda::layerNormBackward(buf.in("x"), buf.in("w"), buf.in("dy"), rows, d, num("eps"),
                              buf.out("dx"), buf.out("dw"), buf.out("db"), rs);
    } else if (k == "causal_conv_bwd") {
      const Shape x = shape("x");
      cuda::causalConvBackward(buf.in("x"), buf.in("kernel"), buf.in("dy"), x[0], x[1], x[2],
                               shape("kernel")[0], buf.out("dx"), buf.out("dkernel"),
                               buf.out("dbias"),
                               p.value("history", false) ? buf.in("history") : nullptr);
    } else if (k == "sum_to") {
      cuda::sumTo(buf.in("x"), shape("x"), p.at("to").get<Shape>(), buf.out("y"));
    } else if (k == "softmax_xent_bwd") {
      const Shape l = shape("logits");
      cuda::softmaxXentBackward(buf.in("logits"), buf.ids("targets"), buf.in("dloss"),
                                cpu::numElements(l) / l.back(), l.back(), integer("ignore"),
                                buf.out("dlogits"));
    } else if (k == "masked_mean_bwd") {
      const Shape m = shape("mask");
      cuda::maskedMeanBackward(buf.in("mask"), buf.in("dout"), m[0], m[1], buf.out("dloss"));
    } else if (k == "accumulate") {
      float *acc = buf.outFrom("acc", "acc");
      cuda::accumulate(acc, buf.in("g"), c.input("acc").size(), float(num("scale")));
    } else if (k == "inner_loop_fwd" || k == "inner_loop_bwd") {
      const cpu::InnerLoopShape s = innerLoopShape(c);
      const auto math =
          c.mode == Mode::bf16 ? cuda::InnerLoopMath::TensorCore : cuda::InnerLoopMath::Exact;
      if (k == "inner_loop_fwd") {
        void *ws = buf.scratch(cuda::innerLoopForwardWorkspace(s));
        cuda::innerLoopForward(s, buf.in("W0"), buf.in("b0"), buf.in("q"), buf.in("k"), buf.in("v"),
                               buf.in("eta"), buf.in("tau"), buf.in("tau_last"), buf.in("gamma"),
                               buf.in("lambda"), buf.out("W_final"), buf.out("b_final"),
                               buf.out("o"), buf.out("ckpt_W"), buf.out("ckpt_b"), ws, math);
      } else {
        void *ws = buf.scratch(cuda::innerLoopBackwardWorkspace(s, math));
        float *cache = nullptr;
        if (c.params.value("cache", false)) {
          // The forward that writes the cache, from the first checkpoint (W0, b0), its other
          // outputs thrown away.
          const size_t state = size_t(s.batch * s.heads * s.headDim * s.headDim),
                       bias = size_t(s.batch * s.heads * s.headDim),
                       tok = size_t(s.n * s.batch * s.heads * s.miniBatch * s.headDim),
                       groups = size_t(s.n / s.group);
          cache = static_cast<float *>(buf.scratch(
              size_t(s.n * s.batch * s.heads * cuda::innerLoopCacheFloats(s.miniBatch, s.headDim)) *
              sizeof(float)));
          auto f32 = [&](size_t n) { return static_cast<float *>(buf.scratch(n * sizeof(float))); };
          cuda::innerLoopForward(s, buf.in("ckpt_W"), buf.in("ckpt_b"), buf.in("q"), buf.in("k"),
                                 buf.in("v"), buf.in("eta"), buf.in("tau"), buf.in("tau_last"),
                                 buf.in("gamma"), buf.in("lambda"), f32(state), f32(bias), f32(tok),
                                 f32(groups * state), f32(groups * bias), nullptr, math, cache);
        }
        cuda::innerLoopBackward(
            s, buf.in("ckpt_W"), buf.in("ckpt_b"), buf.in("q"), buf.in("k"), buf.in("v"),
            buf.in("eta"), buf.in("tau"), buf.in("tau_last"), buf.in("gamma"), buf.in("lambda"),
            buf.in("dW_final"), buf.in("db_final"), buf.in("dO"), buf.out("dW0"), buf.out("db0"),
            buf.out("dq"), buf.out("dk"), buf.out("dv"), buf.out("deta"), buf.out("dtau"),
            buf.out("dtau_last"), buf.out("dgamma"), buf.out("dlambda"), ws, math, cache);
      }
    } else if (k == "fused_elementwise") {
      fused(c, buf);
    } else if (k == "matmul") {
      runMatmul(c, buf);
    } else {
      throw std::invalid_argument("no CUDA launcher for the kind '" + k + "'");
    }
  }

  // The descriptor blob fusedElementwise reads: FusedInput[inputs] then FusedStepDesc[steps].
  static void fused(const Case &c, CaseBuffers &buf) {
    const int nIn = int(c.inputs.size());
    const std::vector<cpu::FusedStep> steps = fusedSteps(c);
    const int nSteps = int(steps.size());
    if (nIn + nSteps > cuda::kMaxFusedSlots)
      throw std::invalid_argument("fused_elementwise: too many inputs and steps");
    const Shape outShape = c.params.at("shape").get<Shape>();
    if (outShape.size() > size_t(cuda::kMaxRank))
      throw std::invalid_argument("fused_elementwise: rank above 6");
    std::vector<const float *> data;
    std::vector<Shape> shapes;
    for (const Tensor &t : c.inputs) {
      data.push_back(buf.in(t.name));
      shapes.push_back(t.shape);
    }
    const std::vector<char> blob = cuda::fusedDescriptor(data, shapes, steps, outShape);
    void *desc = buf.scratch(blob.size());
    upload(desc, blob.data(), blob.size());
    cuda::fusedElementwise(desc, nIn, nSteps, outShape, buf.out("out"));
  }

  // The cuBLASLt launcher of the CUDA runner (Matmul.h): fp32 operands in fp32 mode, bf16
  // operands (cast on the device; the stored values are bf16-exact) in bf16 mode.
  static void runMatmul(const Case &c, CaseBuffers &buf) {
    static cuda::Matmuls matmuls;
    const cpu::MatmulShape m = matmulShape(c);
    cuda::MatmulShape s;
    s.transA = m.transA, s.transB = m.transB, s.m = m.m, s.n = m.n, s.k = m.k, s.batch = m.batch;
    s.strideA = m.strideA, s.strideB = m.strideB, s.strideC = m.strideC;
    const void *a = buf.in("a"), *b = buf.in("b");
    if (c.mode == Mode::bf16) {
      s.operands = cuda::MatmulOperands::bf16;
      const int64_t na = cpu::numElements(c.input("a").shape);
      const int64_t nb = cpu::numElements(c.input("b").shape);
      void *a16 = buf.scratch(size_t(na + nb) * 2 + 256);
      void *b16 = static_cast<char *>(a16) + (size_t(na) * 2 + 255) / 256 * 256;
      cuda::castToBf16(buf.in("a"), na, a16);
      cuda::castToBf16(buf.in("b"), nb, b16);
      a = a16, b = b16;
    }
    matmuls.run(s, a, b, buf.out("c"), cudaStreamPerThread);
  }


  // lm_head_xent (_bwd) through the chunk kernels: the host computes each chunk's logits (as the
  // runner's GEMM would) and, for the backward, dh and dtable from the kernel's G chunks.
  static std::string lmHead(const Case &c, CaseBuffers &buf,
                            std::vector<std::vector<float>> &outputs) {
    const Shape hs = c.input("h").shape, es = c.input("table").shape;
    const int64_t dim = es[1], vocab = es[0], n = cpu::numElements(hs) / dim;
    const int64_t ignore = c.params.at("ignore").get<int64_t>();
    const int64_t chunk =
        std::max<int64_t>(1, std::min<int64_t>(c.params.at("chunk").get<int64_t>(), vocab));
    const std::vector<float> &h = c.input("h").f32, &table = c.input("table").f32;
    const int32_t *targets = buf.ids("targets");
    auto *logits = static_cast<float *>(buf.scratch(size_t(n * chunk) * sizeof(float)));
    if (c.kind == "lm_head_xent") {
      auto *acc = static_cast<double *>(buf.scratch(size_t(3 * n) * sizeof(double)));
      double *runMax = acc, *runSum = acc + n, *picked = acc + 2 * n;
      cuda::xentStart(n, runMax, runSum);
      for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
        const int64_t cols = std::min(chunk, vocab - v0);
        const std::vector<float> l = hostLogits(h, table, n, dim, v0, cols);
        upload(logits, l.data(), l.size() * sizeof(float)); // ordered after the last kernel
        cuda::xentChunk(logits, targets, n, cols, v0, ignore, runMax, runSum, picked,
                        c.mode == Mode::bf16);
        check(cudaGetLastError(), "xentChunk");
      }
      cuda::xentFinish(targets, n, ignore, runMax, runSum, picked, buf.out("loss"),
                       buf.out("mask"), buf.out("lse"));
      check(cudaGetLastError(), "xentFinish");
      check(cudaDeviceSynchronize(), "the kernels");
      buf.downloadAll(outputs);
      return "";
    }
    std::vector<double> dh(size_t(n * dim), 0.0), dtable(size_t(vocab * dim), 0.0);
    std::vector<float> g;
    for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
      const int64_t cols = std::min(chunk, vocab - v0);
      g = hostLogits(h, table, n, dim, v0, cols);
      upload(logits, g.data(), g.size() * sizeof(float));
      cuda::xentBackwardChunk(logits, targets, buf.in("lse"), buf.in("dloss"), n, cols, v0,
                              ignore, nullptr, c.mode == Mode::bf16);
      check(cudaGetLastError(), "xentBackwardChunk");
      download(g.data(), logits, g.size() * sizeof(float));
      // dh += G table[cols]; dtable[cols] = G^T h.
      for (int64_t i = 0; i < n; ++i)
        for (int64_t col = 0; col < cols; ++col) {
          const double gv = double(g[size_t(i * cols + col)]);
          const float *er = table.data() + (v0 + col) * dim, *hr = h.data() + i * dim;
          double *dhr = dh.data() + i * dim, *der = dtable.data() + (v0 + col) * dim;
          for (int64_t d = 0; d < dim; ++d) {
            dhr[d] += gv * double(er[d]);
            der[d] += gv * double(hr[d]);
          }
        }
    }
    outputs.assign(c.outputs.size(), {});
    for (size_t i = 0; i < c.outputs.size(); ++i) {
      const std::vector<double> &src = c.outputs[i].name == "dh" ? dh : dtable;
      if (c.outputs[i].name != "dh" && c.outputs[i].name != "dtable")
        throw std::invalid_argument("lm_head_xent_bwd: unknown output '" + c.outputs[i].name + "'");
      outputs[i].assign(src.begin(), src.end());
    }
    return "";
  }
};
} // namespace

std::unique_ptr<Device> makeCudaDevice(std::string &error, bool *noBackend) {
  if (noBackend)
    *noBackend = false;
  int count = 0;
  if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0) {
    error = std::string("no usable CUDA GPU: ") +
            (e != cudaSuccess ? cudaGetErrorString(e) : "none visible") +
            "; run kernel-check check on the GPU machine (`ttt-run devices` lists what it sees)";
    return nullptr;
  }
  cudaDeviceProp prop{};
  if (cudaError_t e = cudaGetDeviceProperties(&prop, 0); e != cudaSuccess) {
    error = std::string("GPU 0: ") + cudaGetErrorString(e);
    return nullptr;
  }
  if (cudaError_t e = cudaSetDevice(0); e != cudaSuccess) {
    error = std::string("GPU 0: ") + cudaGetErrorString(e);
    return nullptr;
  }
  return std::make_unique<CudaDevice>(std::string(prop.name) + " (GPU 0, compute " +
                                      std::to_string(prop.major) + "." +
                                      std::to_string(prop.minor) + ")");
}

namespace {
// Host random inputs for the timing runs: a 64-bit LCG (fast; statistics do not matter here, only
// realistic ranges: unit-variance q, k, v, small W0, eta ~ 1/f, tau ~ 1/i).
class FastRng {
public:
  explicit FastRng(uint64_t seed) : x_(seed * 0x9e3779b97f4a7c15ull + 1) {}
  double unit() {
    x_ = x_ * 6364136223846793005ull + 1442695040888963407ull;
    return double(x_ >> 11) * 0x1.0p-53;
  }
  float sym(double scale) { return float(scale * 1.7320508075688772 * (2.0 * unit() - 1.0)); }
  float uniform(double lo, double hi) { return float(lo + (hi - lo) * unit()); }

private:
  uint64_t x_;
};

std::vector<float> filled(size_t count, const std::function<float()> &gen) {
  std::vector<float> v(count);
  for (float &x : v)
    x = gen();
  return v;
}
double relDiff(const std::vector<float> &a, const std::vector<float> &b) {
  long double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i]))
      return std::numeric_limits<double>::infinity();
    d += (long double)(a[i] - b[i]) * (a[i] - b[i]);
    n += (long double)b[i] * b[i];
  }
  return n == 0 ? double(std::sqrt(d)) : double(std::sqrt(d / n));
}
double median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v.empty()      ? 0.0
         : v.size() % 2 ? v[v.size() / 2]
                        : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}
} // namespace

std::string timeInnerLoop(const InnerLoopTimingShape &shape, int warmup, int runs, uint64_t seed,
                          std::vector<InnerLoopTiming> &rows) {
  std::string error;
  if (!makeCudaDevice(error))
    return error;
  try {
    const cpu::InnerLoopShape s{shape.n,       shape.batch, shape.heads, shape.miniBatch,
                                shape.headDim, shape.group, 1e-6};
    const int64_t B = s.batch, H = s.heads, b = s.miniBatch, f = s.headDim, n = s.n;
    const size_t tok = size_t(n * B * H * b * f), state = size_t(B * H * f * f),
                 bias = size_t(B * H * f), groups = size_t(n / s.group);
    FastRng r(seed);
    std::map<std::string, std::vector<float>> host;
    host["W0"] = filled(state, [&] { return r.sym(0.02); });
    host["b0"] = filled(bias, [&] { return r.sym(0.02); });
    for (const char *name : {"q", "k", "v"})
      host[name] = filled(tok, [&] { return r.sym(1.0); });
    host["eta"] = filled(size_t(n * B * H * b), [&] { return r.uniform(0.2 / f, 1.0 / f); });
    int i = 0;
    host["tau"] = filled(size_t(b), [&] { return float(1.0 / ++i); });
    host["tau_last"] = {float(1.0 / double(b))};
    host["gamma"] = filled(size_t(H * f), [&] { return r.uniform(0.8, 1.2); });
    host["lambda"] = filled(size_t(H * f), [&] { return r.uniform(-0.1, 0.1); });
    host["dW_final"] = filled(state, [&] { return r.sym(0.1); });
    host["db_final"] = filled(bias, [&] { return r.sym(0.1); });
    host["dO"] = filled(tok, [&] { return r.sym(0.1); });
    std::map<std::string, std::unique_ptr<DeviceBuffer>> dev;
    auto buffer = [&](const std::string &name, size_t floats) {
      dev[name] = std::make_unique<DeviceBuffer>(floats * sizeof(float));
      return static_cast<float *>(dev[name]->get());
    };
    for (const auto &[name, v] : host)
      upload(buffer(name, v.size()), v.data(), v.size() * sizeof(float));
    auto in = [&](const char *name) { return static_cast<const float *>(dev.at(name)->get()); };
    float *Wf = buffer("W_final", state), *bf = buffer("b_final", bias), *o = buffer("o", tok),
          *cW = buffer("ckpt_W", groups * state), *cb = buffer("ckpt_b", groups * bias),
          *dW0 = buffer("dW0", state), *db0 = buffer("db0", bias), *dq = buffer("dq", tok),
          *dk = buffer("dk", tok), *dv = buffer("dv", tok),
          *deta = buffer("deta", size_t(n * B * H * b)), *dtau = buffer("dtau", size_t(b)),
          *dtl = buffer("dtau_last", 1), *dg = buffer("dgamma", size_t(H * f)),
          *dl = buffer("dlambda", size_t(H * f));
    DeviceBuffer ws(std::max(cuda::innerLoopBackwardWorkspace(s, cuda::InnerLoopMath::Exact),
                             cuda::innerLoopBackwardWorkspace(s, cuda::InnerLoopMath::TensorCore)));
    // The inner-loop cache of bf16 plans (Kernels.h), for the third row.
    DeviceBuffer cacheBuf(size_t(n * B * H * cuda::innerLoopCacheFloats(b, f)) * sizeof(float));
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    auto timed = [&](const std::function<void()> &launch) {
      for (int w = 0; w < warmup; ++w)
        launch();
      check(cudaDeviceSynchronize(), "warm-up");
      std::vector<float> ms;
      for (int k = 0; k < runs; ++k) {
        check(cudaEventRecord(start), "cudaEventRecord");
        launch();
        check(cudaEventRecord(stop), "cudaEventRecord");
        check(cudaEventSynchronize(stop), "cudaEventSynchronize");
        float t = 0;
        check(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
        ms.push_back(t);
      }
      check(cudaGetLastError(), "inner loop launch");
      return median(ms);
    };
    auto get = [&](const float *p, size_t count) {
      std::vector<float> v(count);
      download(v.data(), p, count * sizeof(float));
      return v;
    };
    std::vector<float> exactO, exactDq, exactDk, exactDW0;
    for (int variant = 0; variant < 3; ++variant) {
      InnerLoopTiming row;
      row.shape = shape.name;
      const bool tc = variant > 0;
      const auto math = tc ? cuda::InnerLoopMath::TensorCore : cuda::InnerLoopMath::Exact;
      float *cache = variant == 2 ? static_cast<float *>(cacheBuf.get()) : nullptr;
      row.math = !tc                                     ? "exact"
                 : !cuda::innerLoopTensorCoreSupports(s) ? "tensor-core (fell back)"
                 : cache                                 ? "tensor-core, cache"
                                                         : "tensor-core";
      row.fwdMs = timed([&] {
        cuda::innerLoopForward(s, in("W0"), in("b0"), in("q"), in("k"), in("v"), in("eta"),
                               in("tau"), in("tau_last"), in("gamma"), in("lambda"), Wf, bf, o, cW,
                               cb, nullptr, math, cache);
      });
      // The tensor-core backward starts from the exact forward's checkpoints (the same inputs);
      // with the cache, from its own forward's (the cache is that forward's record).
      if (tc) {
        std::vector<float> mine = get(o, tok);
        row.diffO = relDiff(mine, exactO);
        if (!cache)
          cuda::innerLoopForward(s, in("W0"), in("b0"), in("q"), in("k"), in("v"), in("eta"),
                                 in("tau"), in("tau_last"), in("gamma"), in("lambda"), Wf, bf, o,
                                 cW, cb, nullptr, cuda::InnerLoopMath::Exact);
      } else {
        exactO = get(o, tok);
      }
      row.bwdMs = timed([&] {
        cuda::innerLoopBackward(s, cW, cb, in("q"), in("k"), in("v"), in("eta"), in("tau"),
                                in("tau_last"), in("gamma"), in("lambda"), in("dW_final"),
                                in("db_final"), in("dO"), dW0, db0, dq, dk, dv, deta, dtau, dtl, dg,
                                dl, ws.get(), math, cache);
      });
      check(cudaDeviceSynchronize(), "inner loop");
      if (tc) {
        row.diffDq = relDiff(get(dq, tok), exactDq);
        row.diffDk = relDiff(get(dk, tok), exactDk);
        row.diffDW0 = relDiff(get(dW0, state), exactDW0);
      } else {
        exactDq = get(dq, tok);
        exactDk = get(dk, tok);
        exactDW0 = get(dW0, state);
      }
      rows.push_back(row);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  } catch (const std::exception &e) {
    return std::string("kernel-check time (") + shape.name + "): " + e.what();
  }
  return "";
}
} // namespace ttt::kcheck
