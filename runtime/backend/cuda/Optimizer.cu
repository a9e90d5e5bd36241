// The optimizer's kernels on the device (Optimizer.h) and the bf16 cast (Matmul.h). Everything
// runs on the calling thread's default stream (this library is compiled with per-thread default
// streams, so the launches can be captured in a CUDA graph).
#include "runtime/backend/cuda/Matmul.h"
#include "runtime/backend/cuda/Optimizer.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace ttt::cuda {
namespace {
constexpr int kThreads = 256;

// Block b sums the squares of its grid-stride share in double, then a fixed tree: the same
// order every run.
__global__ void sumSquaresKernel(const float *x, int64_t n, double *partials) {
  __shared__ double tree[kThreads];
  double sum = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * kThreads)
    sum += double(x[i]) * double(x[i]);
  tree[threadIdx.x] = sum;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (int(threadIdx.x) < s)
      tree[threadIdx.x] += tree[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    partials[blockIdx.x] = tree[0];
}

__global__ void sumPartialsKernel(const double *partials, int count, double *out) {
  if (threadIdx.x == 0 && blockIdx.x == 0) {
    double sum = 0.0;
    for (int i = 0; i < count; ++i)
      sum += partials[i];
    *out = sum;
  }
}

// cpu::adamwStep element by element, with the clip scale from the device's sum of squares.
__global__ void adamwKernel(float *param, const float *grad, float *m, float *v, int64_t n,
                            AdamwStep a, const double *sumSquares, __nv_bfloat16 *shadow) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n)
    return;
  const double norm = sqrt(*sumSquares);
  if (!isfinite(norm))
    return; // the caller stops the run with the state before this step
  const double clipScale = norm > a.maxNorm ? a.maxNorm / norm : 1.0;
  const double g = double(grad[i]) * clipScale;
  const float mi = float(a.beta1 * double(m[i]) + (1.0 - a.beta1) * g);
  const float vi = float(a.beta2 * double(v[i]) + (1.0 - a.beta2) * g * g);
  m[i] = mi;
  v[i] = vi;
  const double mhat = double(mi) / a.correction1, vhat = double(vi) / a.correction2;
  const double p = double(param[i]);
  const float next = float(p - a.lr * (mhat / (sqrt(vhat) + a.eps) + a.weightDecay * p));
  param[i] = next;
  if (shadow)
    shadow[i] = __float2bfloat16_rn(next);
}

// 4 elements per thread (one 16-byte load, one 8-byte store) when x and y are 16- and 8-byte
// aligned: `quads` of them, then the n % 4 tail one per thread.
__global__ void castKernel(const float *x, int64_t quads, int64_t n, __nv_bfloat16 *y) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i < quads) {
    const float4 v = reinterpret_cast<const float4 *>(x)[i];
    __nv_bfloat162 *out = reinterpret_cast<__nv_bfloat162 *>(y) + 2 * i;
    out[0] = __floats2bfloat162_rn(v.x, v.y);
    out[1] = __floats2bfloat162_rn(v.z, v.w);
  } else if (const int64_t e = 4 * quads + (i - quads); e < n) {
    y[e] = __float2bfloat16_rn(x[e]);
  }
}

int blocksFor(int64_t n) { return int((n + kThreads - 1) / kThreads); }
} // namespace

int sumSquaresBlocks(int64_t n) { return blocksFor(n) < 1024 ? std::max(1, blocksFor(n)) : 1024; }

void sumSquares(const float *x, int64_t n, double *partials, double *out) {
  const int blocks = sumSquaresBlocks(n);
  sumSquaresKernel<<<blocks, kThreads>>>(x, n, partials);
  sumPartialsKernel<<<1, 1>>>(partials, blocks, out);
}

void sumInOrder(const double *x, int count, double *out) {
  sumPartialsKernel<<<1, 1>>>(x, count, out);
}

void adamw(float *param, const float *grad, float *m, float *v, int64_t n, const AdamwStep &a,
           const double *sumSquaresOfGrads, void *bf16Shadow) {
  if (n > 0)
    adamwKernel<<<blocksFor(n), kThreads>>>(param, grad, m, v, n, a, sumSquaresOfGrads,
                                            static_cast<__nv_bfloat16 *>(bf16Shadow));
}

void castToBf16(const float *x, int64_t n, void *y) {
  if (n <= 0)
    return;
  const bool aligned =
      reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 8 == 0;
  const int64_t quads = aligned ? n / 4 : 0;
  castKernel<<<blocksFor(n - 3 * quads), kThreads>>>(x, quads, n, static_cast<__nv_bfloat16 *>(y));
}
} // namespace ttt::cuda
