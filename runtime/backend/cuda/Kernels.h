// The CUDA backend's kernels (fp32 tensors): one launcher per instruction kind of a plan, the
// same semantics as the CPU backend's kernels (runtime/backend/cpu/*.h), which are the reference.
// A first, correct slice (issue 8): plain kernels, one thread per output element or per row,
// statistics and sums in double where the CPU kernel takes them in double, every reduction in a
// fixed order (no atomics): results are deterministic run to run. Matmuls go through cuBLAS
// (CudaRunner.cpp), not here.
//
// Plain C++ header (no CUDA types): the runner is compiled by the host compiler. Every pointer is
// a device pointer unless said otherwise; every launcher runs on the default stream and returns
// without synchronizing.
#pragma once

#include "runtime/backend/cpu/Fused.h"
#include "runtime/backend/cpu/InnerLoop.h"
#include "runtime/backend/cpu/Kernels.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ttt::cuda {
using cpu::Shape;
constexpr int kMaxRank = 6;

// --- forward primitives (Kernels.h) -------------------------------------------------------------
void embedding(const int32_t *tokens, int64_t n, const float *table, int64_t dim, float *y);
void rmsNorm(const float *x, const float *w, int64_t rows, int64_t dim, double eps, float *y);
void layerNorm(const float *x, const float *w, const float *b, int64_t rows, int64_t dim,
               double eps, float *y);
// history (optional, [batch, width - 1, dim]): the inputs before t = 0 (zeros without it).
void causalConv(const float *x, const float *kernel, const float *bias, int64_t batch,
                int64_t seq, int64_t dim, int64_t width, float *y,
                const float *history = nullptr);
// direction +1: rope, -1: its backward.
void rope(const float *x, int64_t batch, int64_t seq, int64_t heads, int64_t headDim,
          int64_t period, double theta, double direction, float *y);
void binary(cpu::BinaryOp op, const float *a, const Shape &shapeA, const float *b,
            const Shape &shapeB, const Shape &outShape, float *out);
// The same results stored as bf16 (round to nearest even) into `out` (__nv_bfloat16 [n]): for a
// value the plan stores as bf16 (ttt-store-bf16), read only by matmuls.
void binaryBf16(cpu::BinaryOp op, const float *a, const Shape &shapeA, const float *b,
                const Shape &shapeB, const Shape &outShape, void *out);
void rmsNormBf16(const float *x, const float *w, int64_t rows, int64_t dim, double eps, void *y);
void unary(cpu::UnaryOp op, const float *x, int64_t n, double alpha, float *y);
void unaryBackward(cpu::UnaryOp op, const float *x, const float *y, const float *dy, int64_t n,
                   double alpha, float *dx);
void reduceLast(cpu::ReduceOp op, const float *x, int64_t rows, int64_t cols, float *y);
void transpose(const float *x, const Shape &shape, const std::vector<int> &perm, float *y);
// Along one axis split as (outer, extent, inner): y[o, 0:size, :] = x[o, start:start+size, :]
// (slice), or dst[o, start:start+size, :] = src[o, :, :] (insert).
void slice(const float *x, int64_t outer, int64_t extent, int64_t inner, int64_t start,
           int64_t size, float *y);
void insert(const float *src, int64_t outer, int64_t extent, int64_t inner, int64_t start,
            int64_t size, float *dst);
void tril(const float *x, int64_t matrices, int64_t n, float *y);
void fill(float *y, int64_t n, double value);
void iota(float *y, int64_t n, double start);
// Targets are checked by the caller (on the host copy of the batch).
void softmaxXent(const float *logits, const int32_t *targets, int64_t n, int64_t vocab,
                 int64_t ignoreToken, float *loss, float *mask);
void maskedMean(const float *loss, const float *mask, int64_t batch, int64_t seq, float *out);

// --- backward primitives (Backward.h) -----------------------------------------------------------
// The scatter-add as a gather: rows of token v are listed (increasing n) in
// positions[offsets[v] .. offsets[v+1]) (built on the host from the token batch).
void embeddingBackward(const int64_t *offsets, const int64_t *positions, const float *dy,
                       int64_t vocab, int64_t dim, float *dtable);
// rowScratch: `rows` doubles (rms) or 2 * rows (layer).
void rmsNormBackward(const float *x, const float *w, const float *dy, int64_t rows, int64_t dim,
                     double eps, float *dx, float *dw, double *rowScratch);
void layerNormBackward(const float *x, const float *w, const float *dy, int64_t rows,
                       int64_t dim, double eps, float *dx, float *dw, float *db,
                       double *rowScratch);
void causalConvBackward(const float *x, const float *kernel, const float *dy, int64_t batch,
                        int64_t seq, int64_t dim, int64_t width, float *dx, float *dkernel,
                        float *dbias, const float *history = nullptr);
void sumTo(const float *x, const Shape &from, const Shape &to, float *y);
void softmaxXentBackward(const float *logits, const int32_t *targets, const float *dloss,
                         int64_t n, int64_t vocab, int64_t ignoreToken, float *dlogits);
// dout: a device scalar.
void maskedMeanBackward(const float *mask, const float *dout, int64_t batch, int64_t seq,
                        float *dloss);
// accumulate_grad: acc[i] += scale * g[i], rounded as the CPU runner rounds it.
void accumulate(float *acc, const float *g, int64_t n, float scale);

// --- fused inner loop (InnerLoop.h), InnerLoop.cu: one thread block per (batch, head), fp32 ------
// Exact: InnerLoop.cu, fp32 FMA loops (fp32 plans; parity 1e-5). TensorCore:
// InnerLoopTensorCore.cu, the step's products on TF32 mma.sync with fp32 accumulation and fp32
// state (bf16 plans; parity 1e-2); for mini-batch 16 and head dims 64 and 96, other shapes run
// Exact (innerLoopTensorCoreSupports says which).
enum class InnerLoopMath { Exact, TensorCore };
// Device workspace (bytes) each launcher needs (the forward needs none). The launchers throw
// std::invalid_argument on a shape the kernels do not cover (head dim > 128, mini-batch > 32).
// cache: the plan's inner-loop cache (tttc, bf16 plans: `tttp.inner_loop_fwd`'s `cache` result,
// [n, B, H, innerLoopCacheFloats(b, f)]) or null. With TensorCore math where it applies the
// forward writes what the backward would recompute of every step there, and the backward reads
// it (it then only re-runs each group's W chain); otherwise both ignore it.
size_t innerLoopForwardWorkspace(const cpu::InnerLoopShape &s);
size_t innerLoopBackwardWorkspace(const cpu::InnerLoopShape &s,
                                  InnerLoopMath math = InnerLoopMath::Exact);
void innerLoopForward(const cpu::InnerLoopShape &s, const float *W0, const float *b0,
                      const float *q, const float *k, const float *v, const float *eta,
                      const float *tau, const float *tauLast, const float *gamma,
                      const float *lambda, float *Wfinal, float *bfinal, float *o, float *ckptW,
                      float *ckptB, void *workspace, InnerLoopMath math = InnerLoopMath::Exact,
                      float *cache = nullptr);
void innerLoopBackward(const cpu::InnerLoopShape &s, const float *ckptW, const float *ckptB,
                       const float *q, const float *k, const float *v, const float *eta,
                       const float *tau, const float *tauLast, const float *gamma,
                       const float *lambda, const float *dWfinal, const float *dbfinal,
                       const float *dO, float *dW0, float *db0, float *dq, float *dk, float *dv,
                       float *deta, float *dtau, float *dtauLast, float *dgamma, float *dlambda,
                       void *workspace, InnerLoopMath math = InnerLoopMath::Exact,
                       const float *cache = nullptr);
// Floats per (mini-batch, sequence, head) of the inner-loop cache: 3 b f + b^2 + 6 b.
int64_t innerLoopCacheFloats(int64_t miniBatch, int64_t headDim);
// The tensor-core kernels themselves (InnerLoopTensorCore.cu; the launchers above call them).
bool innerLoopTensorCoreSupports(const cpu::InnerLoopShape &s);
size_t innerLoopTensorCoreBackwardWorkspace(const cpu::InnerLoopShape &s);
void innerLoopForwardTensorCore(const cpu::InnerLoopShape &s, const float *W0, const float *b0,
                                const float *q, const float *k, const float *v, const float *eta,
                                const float *tau, const float *tauLast, const float *gamma,
                                const float *lambda, float *Wfinal, float *bfinal, float *o,
                                float *ckptW, float *ckptB, float *cache);
void innerLoopBackwardTensorCore(const cpu::InnerLoopShape &s, const float *ckptW,
                                 const float *ckptB, const float *q, const float *k, const float *v,
                                 const float *eta, const float *tau, const float *tauLast,
                                 const float *gamma, const float *lambda, const float *dWfinal,
                                 const float *dbfinal, const float *dO, float *dW0, float *db0,
                                 float *dq, float *dk, float *dv, float *deta, float *dtau,
                                 float *dtauLast, float *dgamma, float *dlambda, void *workspace,
                                 const float *cache);

// --- fused elementwise (Fused.h) ----------------------------------------------------------------
constexpr int kMaxFusedSlots = 64; // inputs + steps
struct FusedInput {
  const float *data = nullptr;
  int32_t full = 1;                  // as many elements as the result: read in order
  int64_t stride[kMaxRank] = {};     // else: element stride per result dimension (0: repeats)
};
struct FusedStepDesc {
  int32_t kind = 0; // 0 binary, 1 unary, 2 unary backward
  int32_t op = 0;   // cpu::BinaryOp or cpu::UnaryOp
  int32_t args[3] = {-1, -1, -1};
  double alpha = 0.0;
};
// desc: device memory holding FusedInput[inputs] then FusedStepDesc[steps] (8-byte aligned).
void fusedElementwise(const void *desc, int inputs, int steps, const Shape &outShape, float *out);
void fusedElementwiseBf16(const void *desc, int inputs, int steps, const Shape &outShape,
                          void *out); // bf16 result, as binaryBf16
// That descriptor blob (host memory, to upload) for inputs `data` of shapes `shapes` broadcast to
// outShape. Throws std::invalid_argument when an input does not broadcast to the result.
std::vector<char> fusedDescriptor(const std::vector<const float *> &data,
                                  const std::vector<Shape> &shapes,
                                  const std::vector<cpu::FusedStep> &steps, const Shape &outShape);

// --- tied lm_head + cross-entropy (Fused.h), around the runner's cuBLAS logits chunks ------------
// runMax, runSum: n doubles, set to -inf / 0; picked: n doubles.
void xentStart(int64_t n, double *runMax, double *runSum);
// One chunk of logits [n, cols] for vocabulary columns [v0, v0 + cols).
// fastExp (bf16 plans): exp in fp32 instead of double, here and in xentBackwardChunk.
void xentChunk(const float *logits, const int32_t *targets, int64_t n, int64_t cols, int64_t v0,
               int64_t ignoreToken, double *runMax, double *runSum, double *picked,
               bool fastExp = false);
void xentFinish(const int32_t *targets, int64_t n, int64_t ignoreToken, const double *runMax,
                const double *runSum, const double *picked, float *loss, float *mask,
                float *lse);
// On a logits chunk: G = dloss * (exp(logit - lse) - onehot(target)), 0 on ignored rows; in
// place, or into gBf16 (an __nv_bfloat16 [n, cols] buffer) when it is given.
void xentBackwardChunk(float *g, const int32_t *targets, const float *lse, const float *dloss,
                       int64_t n, int64_t cols, int64_t v0, int64_t ignoreToken,
                       void *gBf16 = nullptr, bool fastExp = false);
} // namespace ttt::cuda
