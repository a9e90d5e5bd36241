// The CUDA executor of plan programs (CudaRunner.h): the Interpreter's walk over instructions,
// with device buffers and the kernels of runtime/backend/cuda. Matmuls through cuBLAS in fp32 with
// pedantic math (no TF32, no reduced-precision shortcuts).
#include "runtime/exec/CudaRunner.h"

#include "runtime/backend/cpu/Fused.h"
#include "runtime/backend/cuda/Kernels.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <vector>

namespace ttt::exec {
bool cudaBackendAvailable() { return true; }

namespace {
using cpu::Shape;
using Instrs = flatbuffers::Vector<flatbuffers::Offset<plan::Instr>>;

std::string str(const flatbuffers::String *s) { return s ? s->str() : std::string(); }

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
void check(cudaError_t e, const char *what) {
  if (e != cudaSuccess)
    throw CudaError(std::string(what) + ": " + cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char *what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw CudaError(std::string(what) + ": cuBLAS status " + std::to_string(int(s)));
}

std::vector<std::string> lines(const std::string &all) {
  std::vector<std::string> names;
  std::string item;
  for (char c : all) {
    if (c == '\n') {
      names.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  if (!item.empty())
    names.push_back(item);
  return names;
}

// A device allocation that grows (never shrinks) and is freed with its owner.
struct DeviceBuffer {
  void *ptr = nullptr;
  size_t bytes = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  DeviceBuffer(DeviceBuffer &&o) noexcept : ptr(o.ptr), bytes(o.bytes) {
    o.ptr = nullptr;
    o.bytes = 0;
  }
  void *ensure(size_t need) {
    need = std::max<size_t>(need, 4);
    if (need > bytes) {
      if (ptr)
        cudaFree(ptr);
      ptr = nullptr;
      bytes = 0;
      check(cudaMalloc(&ptr, need), "cudaMalloc");
      bytes = need;
    }
    return ptr;
  }
  ~DeviceBuffer() {
    if (ptr)
      cudaFree(ptr);
  }
};

std::string tokenError(const char *kernel, const std::vector<int32_t> &ids, int64_t limit,
                       bool allowIgnore, int64_t ignore, const char *what) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (!(allowIgnore && ids[i] == ignore) && (ids[i] < 0 || ids[i] >= limit))
      return std::string(kernel) + ": " + what + " " + std::to_string(ids[i]) + " at position " +
             std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(limit) + ")";
  return "";
}
} // namespace

struct CudaProgramRunner::State {
  const plan::Program &program;
  cublasHandle_t blas = nullptr;
  std::vector<DeviceBuffer> buffers;           // one per tensor
  std::vector<std::vector<int32_t>> hostInts;  // i32 inputs, as given (token checks, CSR)
  std::map<std::pair<const plan::Instr *, size_t>, DeviceBuffer> scratch; // per instruction
  std::map<std::string, DeviceBuffer> accumulators;                 // per parameter
  std::map<std::string, bool> onDevice, dirty;

  // Per run.
  const NamedTensors<float> *params = nullptr;
  const NamedInts *inputs = nullptr;
  NamedTensors<float> *outputs = nullptr;
  const GradientSink<float> *gradients = nullptr;
  const NamedTensors<float> *states = nullptr;

  explicit State(const plan::Program &p) : program(p) {
    size_t n = p.tensors() ? p.tensors()->size() : 0;
    buffers.resize(n);
    hostInts.resize(n);
  }
  ~State() {
    if (blas)
      cublasDestroy(blas);
  }

  Shape shape(int32_t id) const {
    auto *dims = program.tensors()->Get(id)->shape();
    return dims ? Shape(dims->begin(), dims->end()) : Shape{};
  }
  int64_t size(int32_t id) const { return cpu::numElements(shape(id)); }
  float *F(int32_t id) {
    return static_cast<float *>(buffers[id].ensure(size_t(size(id)) * sizeof(float)));
  }
  int32_t *I(int32_t id) {
    return static_cast<int32_t *>(buffers[id].ensure(size_t(size(id)) * sizeof(int32_t)));
  }
  void *S(const plan::Instr &ins, size_t slot, size_t bytes) {
    return scratch[{&ins, slot}].ensure(bytes); // map nodes never move
  }

  // C[m, n] = op(A) op(B) (+ C), row-major, batched with element strides (0 broadcasts).
  void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, const float *a,
            int64_t strideA, const float *b, int64_t strideB, float beta, float *c,
            int64_t strideC, int64_t batch) {
    if (m == 0 || n == 0 || batch == 0)
      return;
    if (k == 0) {
      if (beta == 0.0f)
        cuda::fill(c, batch * strideC, 0.0);
      return;
    }
    const float alpha = 1.0f;
    const int lda = int(transA ? m : k), ldb = int(transB ? k : n);
    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
    check(cublasSgemmStridedBatched(blas, transB ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    transA ? CUBLAS_OP_T : CUBLAS_OP_N, int(n), int(m), int(k),
                                    &alpha, b, ldb, strideB, a, lda, strideA, &beta, c, int(n),
                                    strideC, int(batch)),
          "cublasSgemmStridedBatched");
  }

  void downloadAccumulator(const std::string &name) {
    if (!dirty[name])
      return;
    std::vector<float> &host = gradients->accumulators->at(name);
    check(cudaMemcpy(host.data(), accumulators[name].ptr, host.size() * sizeof(float),
                     cudaMemcpyDeviceToHost),
          "accumulate_grad: copy back");
    dirty[name] = false;
    onDevice[name] = false; // the host copy may change (a bucket hook) before the next add
  }

  std::string run() {
    if (!blas) {
      check(cublasCreate(&blas), "cublasCreate");
      check(cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
    }
    onDevice.clear();
    dirty.clear();
    std::vector<int32_t> yielded;
    std::string err = exec(program.instrs(), yielded);
    if (err.empty() && gradients && gradients->accumulators)
      for (auto &[name, d] : dirty)
        if (d)
          downloadAccumulator(name);
    check(cudaDeviceSynchronize(), "the program's kernels");
    return err;
  }

  std::string exec(const Instrs *instrs, std::vector<int32_t> &yielded) {
    if (!instrs)
      return "";
    for (uint32_t index = 0; index < instrs->size(); ++index) {
      const plan::Instr *instr = instrs->Get(index);
      std::string op = str(instr->op());
      if (op == "yield") {
        yielded.assign(instr->operands()->begin(), instr->operands()->end());
        continue;
      }
      std::string err = op == "scan" ? scan(*instr) : step(op, *instr);
      if (!err.empty())
        return err;
      if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
        return op + ": " + cudaGetErrorString(e);
    }
    return "";
  }

  void upload(void *dst, const void *src, size_t bytes) {
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "upload");
  }
  void copy(void *dst, const void *src, size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice), "device copy");
  }

  std::string step(const std::string &op, const plan::Instr &ins) {
    auto arg = [&](int i) { return ins.operands()->Get(i); };
    auto res = [&](int i) { return ins.results()->Get(i); };
    auto ints = [&](int i) { return ins.ints()->Get(i); };
    auto flt = [&](int i) { return ins.floats()->Get(i); };
    auto in = [&](int i) -> const float * { return F(arg(i)); };
    auto out = [&](int i) { return F(res(i)); };
    std::string name = str(ins.name());

    if (op == "param") {
      auto it = params->find(name);
      if (it == params->end() || int64_t(it->second.size()) != size(res(0)))
        return "param: parameter '" + name + "' is missing or has the wrong size";
      upload(out(0), it->second.data(), it->second.size() * sizeof(float));
    } else if (op == "input") {
      if (program.tensors()->Get(res(0))->dtype() != plan::DType::i32) {
        if (!states || !states->count(name) || int64_t(states->at(name).size()) != size(res(0)))
          return "input: state '" + name + "' is missing or has the wrong size";
        upload(out(0), states->at(name).data(), states->at(name).size() * sizeof(float));
        return "";
      }
      auto it = inputs->find(name);
      if (it == inputs->end() || int64_t(it->second.size()) != size(res(0)))
        return "input: input '" + name + "' is missing or has the wrong size";
      hostInts[res(0)] = it->second;
      upload(I(res(0)), it->second.data(), it->second.size() * sizeof(int32_t));
    } else if (op == "output") {
      std::vector<float> &host = (*outputs)[name];
      host.resize(size_t(size(arg(0))));
      check(cudaMemcpy(host.data(), in(0), host.size() * sizeof(float), cudaMemcpyDeviceToHost),
            "output: copy back");
    } else if (op == "accumulate_grad") {
      if (!gradients || !gradients->accumulators)
        return "accumulate_grad: this program needs gradient accumulators (run it as micro_step)";
      auto it = gradients->accumulators->find(name);
      const int64_t n = size(arg(0));
      if (it == gradients->accumulators->end() || int64_t(it->second.size()) != n)
        return "accumulate_grad: no accumulator of the right size for '" + name + "'";
      float *acc = static_cast<float *>(accumulators[name].ensure(size_t(n) * sizeof(float)));
      if (!onDevice[name]) {
        upload(acc, it->second.data(), size_t(n) * sizeof(float));
        onDevice[name] = true;
      }
      cuda::accumulate(acc, in(0), n, float(gradients->scale));
      dirty[name] = true;
    } else if (op == "bucket_ready") {
      if (gradients && gradients->onBucketReady) {
        std::vector<std::string> members = lines(name);
        if (gradients->accumulators)
          for (const std::string &m : members)
            downloadAccumulator(m);
        gradients->onBucketReady(ins.ints()->Get(0), members);
      }
    } else if (op == "embedding") {
      Shape table = shape(arg(1));
      if (std::string e = tokenError("embedding", hostInts[arg(0)], table[0], false, 0, "token");
          !e.empty())
        return e;
      cuda::embedding(I(arg(0)), size(arg(0)), in(1), table[1], out(0));
    } else if (op == "matmul") {
      Shape a = shape(arg(0)), b = shape(arg(1));
      const bool ta = ints(0) != 0, tb = ints(1) != 0;
      size_t ra = a.size(), rb = b.size();
      int64_t m = ta ? a[ra - 1] : a[ra - 2], k = ta ? a[ra - 2] : a[ra - 1];
      int64_t n = tb ? b[rb - 2] : b[rb - 1];
      int64_t batch = size(arg(0)) / (a[ra - 1] * a[ra - 2]);
      gemm(ta, tb, m, n, k, in(0), a[ra - 1] * a[ra - 2], in(1),
           rb == 2 ? 0 : b[rb - 1] * b[rb - 2], 0.0f, out(0), m * n, batch);
    } else if (op == "rms_norm") {
      int64_t d = shape(arg(0)).back();
      cuda::rmsNorm(in(0), in(1), size(arg(0)) / d, d, flt(0), out(0));
    } else if (op == "layer_norm") {
      int64_t d = shape(arg(0)).back();
      cuda::layerNorm(in(0), in(1), in(2), size(arg(0)) / d, d, flt(0), out(0));
    } else if (op == "causal_conv") {
      Shape x = shape(arg(0));
      cuda::causalConv(in(0), in(1), in(2), x[0], x[1], x[2], shape(arg(1))[0], out(0));
    } else if (op == "rope" || op == "rope_bwd") {
      Shape x = shape(arg(0));
      cuda::rope(in(0), x[0], x[1], x[2], x[3], ints(0), flt(0), op == "rope" ? 1.0 : -1.0,
                 out(0));
    } else if (op == "binary") {
      static const std::map<std::string, cpu::BinaryOp> kinds = {
          {"add", cpu::BinaryOp::add}, {"sub", cpu::BinaryOp::sub}, {"mul", cpu::BinaryOp::mul},
          {"div", cpu::BinaryOp::div}, {"max", cpu::BinaryOp::max}};
      auto it = kinds.find(name);
      if (it == kinds.end())
        return op + ": unknown kind '" + name + "'";
      Shape sa = shape(arg(0)), sb = shape(arg(1)), so = cpu::broadcastShape(sa, sb);
      if (so.empty() && !(sa.empty() && sb.empty()))
        return "binary: shapes do not broadcast";
      cuda::binary(it->second, in(0), sa, in(1), sb, so, out(0));
    } else if (op == "unary" || op == "unary_bwd") {
      static const std::map<std::string, cpu::UnaryOp> kinds = {
          {"neg", cpu::UnaryOp::neg},         {"exp", cpu::UnaryOp::exp},
          {"log", cpu::UnaryOp::log},         {"sqrt", cpu::UnaryOp::sqrt},
          {"rsqrt", cpu::UnaryOp::rsqrt},     {"reciprocal", cpu::UnaryOp::reciprocal},
          {"sigmoid", cpu::UnaryOp::sigmoid}, {"silu", cpu::UnaryOp::silu},
          {"gelu_tanh", cpu::UnaryOp::gelu_tanh}, {"relu", cpu::UnaryOp::relu},
          {"scale", cpu::UnaryOp::scale},     {"add_scalar", cpu::UnaryOp::add_scalar}};
      auto it = kinds.find(name);
      if (it == kinds.end())
        return op + ": unknown kind '" + name + "'";
      if (op == "unary")
        cuda::unary(it->second, in(0), size(arg(0)), flt(0), out(0));
      else
        cuda::unaryBackward(it->second, in(0), in(1), in(2), size(arg(0)), flt(0), out(0));
    } else if (op == "reduce") {
      static const std::map<std::string, cpu::ReduceOp> kinds = {
          {"sum", cpu::ReduceOp::sum}, {"mean", cpu::ReduceOp::mean}, {"max", cpu::ReduceOp::max}};
      auto it = kinds.find(name);
      if (it == kinds.end())
        return op + ": unknown kind '" + name + "'";
      int64_t cols = shape(arg(0)).back();
      cuda::reduceLast(it->second, in(0), size(arg(0)) / cols, cols, out(0));
    } else if (op == "transpose") {
      std::vector<int> perm(ins.ints()->begin(), ins.ints()->end());
      cuda::transpose(in(0), shape(arg(0)), perm, out(0));
    } else if (op == "reshape") {
      copy(out(0), in(0), size_t(size(arg(0))) * sizeof(float));
    } else if (op == "concat" || op == "slice") {
      const int axis = int(ints(0));
      Shape big = shape(op == "concat" ? res(0) : arg(0));
      int64_t outer = 1, inner = 1;
      for (int d = 0; d < axis; ++d)
        outer *= big[d];
      for (size_t d = size_t(axis) + 1; d < big.size(); ++d)
        inner *= big[d];
      if (op == "concat") {
        const int64_t first = shape(arg(0))[axis];
        cuda::insert(in(0), outer, big[axis], inner, 0, first, out(0));
        cuda::insert(in(1), outer, big[axis], inner, first, big[axis] - first, out(0));
      } else {
        cuda::slice(in(0), outer, big[axis], inner, ints(1), shape(res(0))[axis], out(0));
      }
    } else if (op == "tril") {
      int64_t n = shape(arg(0)).back();
      cuda::tril(in(0), size(arg(0)) / (n * n), n, out(0));
    } else if (op == "constant") {
      cuda::fill(out(0), size(res(0)), flt(0));
    } else if (op == "iota") {
      cuda::iota(out(0), size(res(0)), flt(0));
    } else if (op == "softmax_xent") {
      int64_t vocab = shape(arg(0)).back();
      if (std::string e = tokenError("softmax_xent", hostInts[arg(1)], vocab, true, ints(0),
                                     "target");
          !e.empty())
        return e;
      cuda::softmaxXent(in(0), I(arg(1)), size(arg(0)) / vocab, vocab, ints(0), out(0), out(1));
    } else if (op == "masked_mean") {
      Shape s = shape(arg(0));
      cuda::maskedMean(in(0), in(1), s[0], s[1], out(0));
    } else if (op == "embedding_bwd") {
      Shape table = shape(res(0));
      const std::vector<int32_t> &tokens = hostInts[arg(0)];
      if (std::string e = tokenError("embedding_backward", tokens, table[0], false, 0, "token");
          !e.empty())
        return e;
      // Rows of each token in increasing position: the CPU's summation order.
      std::vector<int64_t> offsets(size_t(table[0]) + 1, 0), positions(tokens.size());
      for (int32_t t : tokens)
        ++offsets[size_t(t) + 1];
      for (size_t v = 0; v < size_t(table[0]); ++v)
        offsets[v + 1] += offsets[v];
      std::vector<int64_t> next(offsets.begin(), offsets.end() - 1);
      for (size_t i = 0; i < tokens.size(); ++i)
        positions[size_t(next[size_t(tokens[i])]++)] = int64_t(i);
      auto *dOff = static_cast<int64_t *>(S(ins, 0, offsets.size() * sizeof(int64_t)));
      auto *dPos = static_cast<int64_t *>(S(ins, 1, positions.size() * sizeof(int64_t)));
      upload(dOff, offsets.data(), offsets.size() * sizeof(int64_t));
      upload(dPos, positions.data(), positions.size() * sizeof(int64_t));
      cuda::embeddingBackward(dOff, dPos, in(1), table[0], table[1], out(0));
    } else if (op == "rms_norm_bwd") {
      int64_t d = shape(arg(0)).back(), rows = size(arg(0)) / d;
      auto *rs = static_cast<double *>(S(ins, 0, size_t(rows) * sizeof(double)));
      cuda::rmsNormBackward(in(0), in(1), in(2), rows, d, flt(0), out(0), out(1), rs);
    } else if (op == "layer_norm_bwd") {
      int64_t d = shape(arg(0)).back(), rows = size(arg(0)) / d;
      auto *rs = static_cast<double *>(S(ins, 0, size_t(2 * rows) * sizeof(double)));
      cuda::layerNormBackward(in(0), in(1), in(2), rows, d, flt(0), out(0), out(1), out(2), rs);
    } else if (op == "causal_conv_bwd") {
      Shape x = shape(arg(0));
      cuda::causalConvBackward(in(0), in(1), in(2), x[0], x[1], x[2], shape(arg(1))[0], out(0),
                               out(1), out(2));
    } else if (op == "sum_to") {
      cuda::sumTo(in(0), shape(arg(0)), shape(res(0)), out(0));
    } else if (op == "softmax_xent_bwd") {
      int64_t vocab = shape(arg(0)).back();
      cuda::softmaxXentBackward(in(0), I(arg(1)), in(2), size(arg(0)) / vocab, vocab, ints(0),
                                out(0));
    } else if (op == "masked_mean_bwd") {
      Shape m = shape(arg(0));
      cuda::maskedMeanBackward(in(0), in(1), m[0], m[1], out(0));
    } else if (op == "inner_loop_fwd" || op == "inner_loop_bwd") {
      Shape qs = shape(arg(2));
      cpu::InnerLoopShape s{qs[0], qs[1], qs[2], qs[3], qs[4], ints(0), flt(0)};
      std::vector<float *> r;
      for (uint32_t i = 0; i < ins.results()->size(); ++i)
        r.push_back(out(int(i)));
      if (op == "inner_loop_fwd") {
        void *ws = S(ins, 0, cuda::innerLoopForwardWorkspace(s));
        cuda::innerLoopForward(s, in(0), in(1), in(2), in(3), in(4), in(5), in(6), in(7), in(8),
                               in(9), r[0], r[1], r[2], r[3], r[4], ws);
      } else {
        void *ws = S(ins, 0, cuda::innerLoopBackwardWorkspace(s));
        cuda::innerLoopBackward(s, in(0), in(1), in(2), in(3), in(4), in(5), in(6), in(7), in(8),
                                in(9), in(10), in(11), in(12), r[0], r[1], r[2], r[3], r[4], r[5],
                                r[6], r[7], r[8], r[9], ws);
      }
    } else if (op == "fused_elementwise") {
      return fused(ins);
    } else if (op == "lm_head_xent" || op == "lm_head_xent_bwd") {
      return lmHead(op, ins);
    } else {
      return op + ": no CUDA kernel for this instruction (plan from a newer tttc?)";
    }
    return "";
  }

  std::string fused(const plan::Instr &ins) {
    std::vector<cpu::FusedStep> steps;
    const int nIn = int(ins.operands()->size());
    if (std::string err = cpu::parseFusedSteps(lines(str(ins.name())), ins.ints()->data(),
                                               ins.floats()->data(), nIn, steps);
        !err.empty())
      return err;
    const int nSteps = int(steps.size());
    if (nIn + nSteps > cuda::kMaxFusedSlots)
      return "fused_elementwise: " + std::to_string(nIn + nSteps) +
             " inputs and steps; the CUDA kernel takes at most " +
             std::to_string(cuda::kMaxFusedSlots);
    const Shape outShape = shape(ins.results()->Get(0));
    const int64_t total = cpu::numElements(outShape);
    const size_t rank = outShape.size();
    std::vector<cuda::FusedInput> inputsDesc(static_cast<size_t>(nIn));
    for (int i = 0; i < nIn; ++i) {
      const int32_t id = ins.operands()->Get(i);
      const Shape s = shape(id);
      cuda::FusedInput &d = inputsDesc[size_t(i)];
      d.data = F(id);
      d.full = cpu::numElements(s) == total;
      if (d.full)
        continue;
      if (s.size() > rank)
        return "fused_elementwise: an input does not broadcast to the result";
      int64_t stride = 1;
      for (size_t k = 0; k < s.size(); ++k) {
        const int64_t dim = s[s.size() - 1 - k], o = outShape[rank - 1 - k];
        if (dim != 1 && dim != o)
          return "fused_elementwise: an input does not broadcast to the result";
        d.stride[rank - 1 - k] = dim == 1 ? 0 : stride;
        stride *= dim;
      }
    }
    std::vector<cuda::FusedStepDesc> stepsDesc(static_cast<size_t>(nSteps));
    for (int j = 0; j < nSteps; ++j) {
      const cpu::FusedStep &s = steps[size_t(j)];
      cuda::FusedStepDesc &d = stepsDesc[size_t(j)];
      d.kind = s.kind == cpu::FusedStep::Kind::binary  ? 0
               : s.kind == cpu::FusedStep::Kind::unary ? 1
                                                       : 2;
      d.op = s.kind == cpu::FusedStep::Kind::binary ? int(s.binary) : int(s.unary);
      for (int a = 0; a < 3; ++a)
        d.args[a] = int32_t(s.args[a]);
      d.alpha = s.alpha;
    }
    const size_t inBytes = inputsDesc.size() * sizeof(cuda::FusedInput);
    const size_t stepBytes = stepsDesc.size() * sizeof(cuda::FusedStepDesc);
    std::vector<char> blob(inBytes + stepBytes);
    std::copy_n(reinterpret_cast<const char *>(inputsDesc.data()), inBytes, blob.data());
    std::copy_n(reinterpret_cast<const char *>(stepsDesc.data()), stepBytes, blob.data() + inBytes);
    void *desc = S(ins, 0, blob.size());
    upload(desc, blob.data(), blob.size());
    cuda::fusedElementwise(desc, nIn, nSteps, outShape, F(ins.results()->Get(0)));
    return "";
  }

  // Fused.h: hidden [..., D] (n rows), table [V, D]; ints [ignore_token, chunk]. The logits of
  // every row are taken `chunk` vocabulary columns at a time (cuBLAS), never [n, V] at once.
  std::string lmHead(const std::string &op, const plan::Instr &ins) {
    auto arg = [&](int i) { return ins.operands()->Get(i); };
    Shape e = shape(arg(1));
    const int64_t dim = e[1], vocab = e[0], n = size(arg(0)) / dim;
    const int64_t ignore = ins.ints()->Get(0);
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(ins.ints()->Get(1), vocab));
    if (std::string err = tokenError(op.c_str(), hostInts[arg(2)], vocab, true, ignore, "target");
        !err.empty())
      return err;
    const float *h = F(arg(0)), *table = F(arg(1));
    const int32_t *targets = I(arg(2));
    auto *logits = static_cast<float *>(S(ins, 0, size_t(n * chunk) * sizeof(float)));
    if (op == "lm_head_xent") {
      auto *acc = static_cast<double *>(S(ins, 1, size_t(3 * n) * sizeof(double)));
      double *runMax = acc, *runSum = acc + n, *picked = acc + 2 * n;
      cuda::xentStart(n, runMax, runSum);
      for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
        const int64_t cols = std::min(chunk, vocab - v0);
        gemm(false, true, n, cols, dim, h, 0, table + v0 * dim, 0, 0.0f, logits, 0, 1);
        cuda::xentChunk(logits, targets, n, cols, v0, ignore, runMax, runSum, picked);
      }
      const auto &r = *ins.results();
      cuda::xentFinish(targets, n, ignore, runMax, runSum, picked, F(r.Get(0)), F(r.Get(1)),
                       F(r.Get(2)));
      return "";
    }
    const float *lse = F(arg(3)), *dloss = F(arg(4));
    float *dh = F(ins.results()->Get(0)), *dtable = F(ins.results()->Get(1));
    for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
      const int64_t cols = std::min(chunk, vocab - v0);
      gemm(false, true, n, cols, dim, h, 0, table + v0 * dim, 0, 0.0f, logits, 0, 1);
      cuda::xentBackwardChunk(logits, targets, lse, dloss, n, cols, v0, ignore);
      // dh (+)= G table[cols]; dtable[cols] = G^T h (every row at once: written once).
      gemm(false, false, n, dim, cols, logits, 0, table + v0 * dim, 0, v0 == 0 ? 0.0f : 1.0f, dh,
           0, 1);
      gemm(true, false, cols, dim, n, logits, 0, h, 0, 0.0f, dtable + v0 * dim, 0, 1);
    }
    return "";
  }

  // As the Interpreter's scan: carried values copied into the body's arguments, the scanned
  // inputs sliced per step, stacked results written per step.
  std::string scan(const plan::Instr &ins) {
    const auto &operands = *ins.operands();
    const auto &results = *ins.results();
    const auto &args = *ins.body_args();
    const size_t carried = size_t(ins.ints()->Get(0));
    const bool reverse = ins.ints()->size() > 1 && ins.ints()->Get(1) != 0;
    const size_t scanned = operands.size() - carried;
    const int64_t count = shape(operands.Get(carried))[0];
    for (size_t i = 0; i < carried; ++i)
      copy(F(args.Get(i)), F(operands.Get(i)), size_t(size(operands.Get(i))) * sizeof(float));
    for (int64_t step = 0; step < count; ++step) {
      const int64_t s = reverse ? count - 1 - step : step;
      for (size_t j = 0; j < scanned; ++j) {
        int32_t x = operands.Get(carried + j), slice = args.Get(carried + j);
        int64_t n = size(slice);
        copy(F(slice), F(x) + s * n, size_t(n) * sizeof(float));
      }
      std::vector<int32_t> yielded;
      if (std::string err = exec(ins.body(), yielded); !err.empty())
        return err;
      if (yielded.size() != results.size())
        return "scan: the body yields " + std::to_string(yielded.size()) + " values, expected " +
               std::to_string(results.size());
      for (size_t r = carried; r < results.size(); ++r) {
        int64_t n = size(yielded[r]);
        copy(F(results.Get(r)) + s * n, F(yielded[r]), size_t(n) * sizeof(float));
      }
      // The new carry through temporaries: a carried value may yield another's argument.
      for (size_t i = 0; i < carried; ++i) {
        size_t bytes = size_t(size(args.Get(i))) * sizeof(float);
        copy(S(ins, i, bytes), F(yielded[i]), bytes);
      }
      for (size_t i = 0; i < carried; ++i) {
        size_t bytes = size_t(size(args.Get(i))) * sizeof(float);
        copy(F(args.Get(i)), S(ins, i, bytes), bytes);
      }
    }
    for (size_t i = 0; i < carried; ++i)
      copy(F(results.Get(i)), F(args.Get(i)), size_t(size(args.Get(i))) * sizeof(float));
    return "";
  }
};

CudaProgramRunner::CudaProgramRunner(const plan::Program &program)
    : state_(std::make_unique<State>(program)) {}
CudaProgramRunner::~CudaProgramRunner() = default;

std::string CudaProgramRunner::run(const NamedTensors<float> &params, const NamedInts &inputs,
                                   NamedTensors<float> &outputs,
                                   const GradientSink<float> *gradients,
                                   const NamedTensors<float> *states) {
  State &s = *state_;
  s.params = &params;
  s.inputs = &inputs;
  s.outputs = &outputs;
  s.gradients = gradients;
  s.states = states;
  std::string err;
  try {
    err = s.run();
  } catch (const std::exception &e) {
    err = e.what();
  }
  return err.empty() ? err : "program " + str(s.program.name()) + " (cuda): " + err;
}
} // namespace ttt::exec
