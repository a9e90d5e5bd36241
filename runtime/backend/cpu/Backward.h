// Backward (vector-Jacobian product) kernels of the primitives whose gradient is not itself a
// composition of forward primitives (docs/primitives.md, "Backward primitives"). Same conventions
// as Kernels.h: float or double, dense row-major, shapes explicit; `dy` is the cotangent of the
// forward result; outputs are overwritten (not accumulated) unless a parameter says otherwise.
#pragma once

#include "runtime/backend/cpu/Kernels.h"

namespace ttt::cpu {
// --- gather (EmbeddingBackward.cpp) -------------------------------------------------------------
// dtable[v, :] = sum over n with tokens[n] == v of dy[n, :]; dtable is [vocab, dim], zeroed first.
// Deterministic: rows are summed in increasing n. "" or an error naming a bad token.
template <typename T>
std::string embeddingBackward(const int32_t *tokens, int64_t n, const T *dy, int64_t vocab,
                              int64_t dim, T *dtable);

// --- norms (NormsBackward.cpp) ------------------------------------------------------------------
// rms_norm: y = w * x * r, r = 1/sqrt(mean(x^2) + eps). dx [rows, dim], dw [dim] (summed over
// rows).
template <typename T>
void rmsNormBackward(const T *x, const T *w, const T *dy, int64_t rows, int64_t dim, double eps,
                     T *dx, T *dw);
// layer_norm: y = w * xhat + b. dx [rows, dim], dw [dim], db [dim] (summed over rows).
template <typename T>
void layerNormBackward(const T *x, const T *w, const T *dy, int64_t rows, int64_t dim, double eps,
                       T *dx, T *dw, T *db);

// --- conv (CausalConvBackward.cpp) --------------------------------------------------------------
// For y[t,c] = bias[c] + sum_j k[j,c] x[t-W+1+j, c]: dx [B,T,D], dk [W,D], dbias [D].
// history: as causalConv's (it reaches dkernel; it gets no cotangent itself).
template <typename T>
void causalConvBackward(const T *x, const T *kernel, const T *dy, int64_t batch, int64_t seq,
                        int64_t dim, int64_t width, T *dx, T *dkernel, T *dbias,
                        const T *history = nullptr);

// --- rope: the backward of rope is rope with the opposite angle (Rope.cpp) ----------------------
template <typename T>
void ropeBackward(const T *dy, int64_t batch, int64_t seq, int64_t heads, int64_t headDim,
                  int64_t period, double theta, T *dx);

// --- elementwise (ElementwiseBackward.cpp) ------------------------------------------------------
// dx = dy * f'(x) for every UnaryOp (alpha as in the forward); y = f(x) is given too so kernels
// may use it (sigmoid, exp, rsqrt, ...). relu'(0) = 0.
template <typename T>
void unaryBackward(UnaryOp op, const T *x, const T *y, const T *dy, int64_t n, double alpha, T *dx);
// Sums `x` (of shape `from`) over the broadcast dimensions down to shape `to` (numpy
// broadcasting, right-aligned): the gradient of broadcasting `to` up to `from`.
template <typename T> void sumToShape(const T *x, const Shape &from, const Shape &to, T *y);

// --- loss (LossBackward.cpp) --------------------------------------------------------------------
// softmax_xent: dlogits[n, :] = dloss[n] * mask[n] * (softmax(logits[n]) - onehot(targets[n])).
template <typename T>
void softmaxXentBackward(const T *logits, const int32_t *targets, const T *dloss, int64_t n,
                         int64_t vocab, int64_t ignoreToken, T *dlogits);
// masked_mean: dloss[b, t] = dout * mask[b, t] / (batch * max(sum_t mask[b, t], 1e-10)).
template <typename T>
void maskedMeanBackward(const T *mask, T dout, int64_t batch, int64_t seq, T *dloss);

// --- optimizer (Optimizer.cpp) ------------------------------------------------------------------
// Sum of squares of n values, accumulated in double (for the global gradient norm).
template <typename T> double sumSquares(const T *x, int64_t n);
// One AdamW step on one tensor, exactly as optax (spec 4.1): g' = g * clipScale;
// m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2; mhat = m / (1 - b1^k); vhat = v / (1 - b2^k);
// p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)   (wd only if decay); k = 1-based step.
// Parameters and moments are T (fp32 master weights, or fp64 in fp64 plans).
template <typename T>
void adamwStep(T *param, const T *grad, T *m, T *v, int64_t n, double lr, double beta1,
               double beta2, double eps, double weightDecay, bool decay, int64_t step,
               double clipScale);
// The learning rate of optax warmup_cosine_decay_schedule at optimizer count c (0-based; the
// first update uses c = 0, i.e. lr 0 when warmup > 0): spec 4.2.
double warmupCosineLr(int64_t count, double peak, double end, int64_t warmup, int64_t total);
} // namespace ttt::cpu
