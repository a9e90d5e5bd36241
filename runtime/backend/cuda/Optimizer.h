// The apply step on the device: the gradients' global sum of squares and a fused AdamW over every
// parameter at once (the parameter, gradient and moment regions are each one contiguous block),
// the same arithmetic as cpu::adamwStep (double per element, rounded once), writing the bf16
// copies the matmuls read in bf16 mode. No host synchronisation: the clip scale is computed on
// the device from the sum of squares.
#pragma once

#include <cstdint>

namespace ttt::cuda {
struct AdamwStep {
  double lr = 0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0;
  double correction1 = 1, correction2 = 1; // 1 - beta^step
  double maxNorm = 1.0;                    // global-norm clip
};

/// Blocks (and doubles of `partials`) sumSquares uses for n elements.
int sumSquaresBlocks(int64_t n);
/// *out = sum of x[i]^2 in double, in a fixed order (deterministic).
void sumSquares(const float *x, int64_t n, double *partials, double *out);
/// *out = x[0] + x[1] + ... + x[count-1], left to right (ZeRO-1: the ranks' sums of squares in
/// rank order, so every rank computes the same global norm).
void sumInOrder(const double *x, int count, double *out);
/// One AdamW update of n elements with the gradient scaled by min(1, maxNorm / sqrt(*sumSquares));
/// bf16Shadow (may be null): a __nv_bfloat16 copy of the updated parameters.
void adamw(float *param, const float *grad, float *m, float *v, int64_t n, const AdamwStep &a,
           const double *sumSquaresOfGrads, void *bf16Shadow);
} // namespace ttt::cuda
