// The CUDA backend's kernels (Kernels.h). Each kernel follows its CPU kernel's arithmetic: the
// same operations in the same precision (double where the CPU uses double, float otherwise, float
// binary ops without FMA contraction), so fp32 results agree with the CPU backend to rounding.
#include "runtime/backend/cuda/Kernels.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace ttt::cuda {
namespace {
constexpr int kThreads = 256;
constexpr int kRowThreads = 256; // block-per-row kernels (power of two: fixed tree reduction)

int blocksFor(int64_t n) { return int((n + kThreads - 1) / kThreads); }

bool aligned16(std::initializer_list<const void *> pointers) {
  for (const void *p : pointers)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0)
      return false;
  return true;
}

// Results are written as fp32, or as bf16 (round to nearest even) for a value the plan stores as
// bf16 (ttt-store-bf16): the same float, rounded as a matmul's operand cast would round it.
__device__ void put(float *y, int64_t i, float v) { y[i] = v; }
__device__ void put(__nv_bfloat16 *y, int64_t i, float v) { y[i] = __float2bfloat16_rn(v); }
// Elements 4q .. 4q+3 (y 16-byte aligned for fp32, 8-byte for bf16).
__device__ void put4(float *y, int64_t q, float4 v) { reinterpret_cast<float4 *>(y)[q] = v; }
__device__ void put4(__nv_bfloat16 *y, int64_t q, float4 v) {
  __nv_bfloat162 *o = reinterpret_cast<__nv_bfloat162 *>(y) + 2 * q;
  o[0] = __floats2bfloat162_rn(v.x, v.y);
  o[1] = __floats2bfloat162_rn(v.z, v.w);
}

struct Dims {
  int rank = 0;
  int64_t d[kMaxRank] = {};
};
struct Strides {
  int64_t s[kMaxRank] = {};
};

Dims dimsOf(const Shape &shape) {
  if (shape.size() > size_t(kMaxRank))
    throw std::invalid_argument("cuda: rank " + std::to_string(shape.size()) +
                                " is above the supported 6");
  Dims d;
  d.rank = int(shape.size());
  for (size_t i = 0; i < shape.size(); ++i)
    d.d[i] = shape[i];
  return d;
}

// Strides of `shape` seen through the broadcast output of rank `rank` (0 on broadcast dims).
Strides broadcastStrides(const Shape &shape, int rank) {
  Strides st;
  int64_t stride = 1;
  for (int i = 0; i < rank; ++i) {
    const int out = rank - 1 - i;
    if (i < int(shape.size())) {
      const int64_t d = shape[shape.size() - 1 - i];
      st.s[out] = d == 1 ? 0 : stride;
      stride *= d;
    } else {
      st.s[out] = 0;
    }
  }
  return st;
}

// --- element math, as the CPU kernels compute it ------------------------------------------------
__device__ float binaryOp(int op, float x, float y) {
  switch (op) {
  case int(cpu::BinaryOp::add):
    return __fadd_rn(x, y);
  case int(cpu::BinaryOp::sub):
    return __fsub_rn(x, y);
  case int(cpu::BinaryOp::mul):
    return __fmul_rn(x, y);
  case int(cpu::BinaryOp::div):
    return __fdiv_rn(x, y);
  default: // max; NaN propagates
    return (x >= y || isnan(x)) ? x : y;
  }
}

__device__ double unaryOp(int op, double v, double alpha) {
  switch (op) {
  case int(cpu::UnaryOp::neg):
    return -v;
  case int(cpu::UnaryOp::exp):
    return exp(v);
  case int(cpu::UnaryOp::log):
    return log(v);
  case int(cpu::UnaryOp::sqrt):
    return sqrt(v);
  case int(cpu::UnaryOp::rsqrt):
    return 1.0 / sqrt(v);
  case int(cpu::UnaryOp::reciprocal):
    return 1.0 / v;
  case int(cpu::UnaryOp::sigmoid):
    return 1.0 / (1.0 + exp(-v));
  case int(cpu::UnaryOp::silu):
    return v / (1.0 + exp(-v));
  case int(cpu::UnaryOp::gelu_tanh): {
    const double c = 0.7978845608028654;
    return 0.5 * v * (1.0 + tanh(c * (v + 0.044715 * v * v * v)));
  }
  case int(cpu::UnaryOp::relu):
    return v < 0.0 ? 0.0 : v;
  case int(cpu::UnaryOp::scale):
    return alpha * v;
  default: // add_scalar
    return v + alpha;
  }
}

// f'(x) given x (u) and the forward result (v).
__device__ double unaryDerivative(int op, double u, double v, double alpha) {
  switch (op) {
  case int(cpu::UnaryOp::neg):
    return -1.0;
  case int(cpu::UnaryOp::exp):
    return v;
  case int(cpu::UnaryOp::log):
    return 1.0 / u;
  case int(cpu::UnaryOp::sqrt):
    return 0.5 / v;
  case int(cpu::UnaryOp::rsqrt):
    return -0.5 * v * v * v;
  case int(cpu::UnaryOp::reciprocal):
    return -v * v;
  case int(cpu::UnaryOp::sigmoid):
    return v * (1.0 - v);
  case int(cpu::UnaryOp::silu): {
    const double s = 1.0 / (1.0 + exp(-u));
    return s * (1.0 + u * (1.0 - s));
  }
  case int(cpu::UnaryOp::gelu_tanh): {
    const double c = 0.7978845608028654;
    const double t = tanh(c * (u + 0.044715 * u * u * u));
    return 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * u * u);
  }
  case int(cpu::UnaryOp::relu):
    return u > 0.0 ? 1.0 : 0.0;
  case int(cpu::UnaryOp::scale):
    return alpha;
  default: // add_scalar
    return 1.0;
  }
}

__device__ float unaryF(int op, float x, double alpha) { return float(unaryOp(op, double(x), alpha)); }
__device__ float unaryBwdF(int op, float x, float y, float dy, double alpha) {
  return float(double(dy) * unaryDerivative(op, double(x), double(y), alpha));
}

// Block-wide sum of one double per thread, a fixed tree: the same result every run.
__device__ double blockSum(double v, double *shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s)
      shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  const double r = shared[0];
  __syncthreads();
  return r;
}
// Block-wide max of floats; NaN wins (as a max_element that keeps NaN would not, but such a row
// gives NaN either way).
__device__ float blockMax(float v, float *shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      const float a = shared[threadIdx.x], b = shared[threadIdx.x + s];
      shared[threadIdx.x] = (a >= b || isnan(a)) ? a : b;
    }
    __syncthreads();
  }
  const float r = shared[0];
  __syncthreads();
  return r;
}

// --- column sums: two passes in a fixed order ----------------------------------------------------
// Sums over the rows of [rows, cols] values (N per element, given by a functor) for every column:
// pass 1, blocks of 32 columns x 8 row lanes each sum a chunk of kChunkRows rows (lane by lane,
// then the lanes in order) into partials [chunks][N][cols]; pass 2 sums the chunks in order. The
// same order every run, and thousands of blocks instead of one thread per column.
constexpr int kColTile = 32, kRowLanes = 8, kChunkRows = 256;

template <int N, class Value>
__global__ void columnPartialsKernel(Value value, int64_t rows, int64_t cols, double *partials) {
  __shared__ double lanes[kRowLanes][N][kColTile];
  const int64_t c = int64_t(blockIdx.x) * kColTile + threadIdx.x;
  const int64_t r0 = int64_t(blockIdx.y) * kChunkRows;
  const int64_t r1 = r0 + kChunkRows < rows ? r0 + kChunkRows : rows;
  double acc[N];
  for (int k = 0; k < N; ++k)
    acc[k] = 0.0;
  if (c < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes)
      value(r, c, acc);
  for (int k = 0; k < N; ++k)
    lanes[threadIdx.y][k][threadIdx.x] = acc[k];
  __syncthreads();
  if (threadIdx.y == 0 && c < cols)
    for (int k = 0; k < N; ++k) {
      double sum = 0.0;
      for (int l = 0; l < kRowLanes; ++l)
        sum += lanes[l][k][threadIdx.x];
      partials[(int64_t(blockIdx.y) * N + k) * cols + c] = sum;
    }
}

template <int N> struct ColumnOutputs {
  float *out[N];
};

template <int N>
__global__ void columnFinishKernel(const double *partials, int64_t chunks, int64_t cols,
                                   ColumnOutputs<N> outputs) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= N * cols)
    return;
  const int64_t k = i / cols, c = i % cols;
  double sum = 0.0;
  for (int64_t b = 0; b < chunks; ++b)
    sum += partials[(b * N + k) * cols + c];
  outputs.out[k][c] = float(sum);
}

// The partials live in one device buffer of this library, grown (never during a graph capture:
// a program's first run is eager and sizes it) and reused: launches are ordered on the stream.
double *columnScratch(size_t doubles) {
  static double *buffer = nullptr;
  static size_t size = 0;
  if (doubles > size) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    cudaStreamIsCapturing(cudaStreamPerThread, &status);
    if (status != cudaStreamCaptureStatusNone)
      throw std::runtime_error("column sums: scratch must grow during a graph capture");
    if (buffer)
      cudaFree(buffer);
    buffer = nullptr;
    size = 0;
    if (cudaMalloc(&buffer, doubles * sizeof(double)) != cudaSuccess)
      throw std::runtime_error("cudaMalloc of the column-sum scratch failed");
    size = doubles;
  }
  return buffer;
}

template <int N, class Value>
void columnSums(Value value, int64_t rows, int64_t cols, ColumnOutputs<N> outputs) {
  if (cols <= 0)
    return;
  const int64_t chunks = rows > 0 ? (rows + kChunkRows - 1) / kChunkRows : 1;
  double *partials = columnScratch(size_t(chunks * N * cols));
  if (rows <= 0) {
    cudaMemsetAsync(partials, 0, size_t(N * cols) * sizeof(double), cudaStreamPerThread);
  } else {
    const dim3 grid(unsigned((cols + kColTile - 1) / kColTile), unsigned(chunks));
    columnPartialsKernel<N><<<grid, dim3(kColTile, kRowLanes)>>>(value, rows, cols, partials);
  }
  const int64_t total = N * cols;
  columnFinishKernel<N><<<int((total + 255) / 256), 256>>>(partials, chunks, cols, outputs);
}

struct RmsWeightGrad { // d w[c] = sum_r dy x inv[r]
  const float *x, *dy;
  const double *invs;
  __device__ void operator()(int64_t r, int64_t c, double *acc) const {
    acc[0] += double(dy[r * cols + c]) * double(x[r * cols + c]) * invs[r];
  }
  int64_t cols;
};
struct LayerNormParamGrads { // d w[c] = sum_r dy xhat, d b[c] = sum_r dy
  const float *x, *dy;
  const double *stats;
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, double *acc) const {
    const double g = double(dy[r * cols + c]);
    acc[0] += g * ((double(x[r * cols + c]) - stats[2 * r]) * stats[2 * r + 1]);
    acc[1] += g;
  }
};
template <int Width> struct ConvParamGrads { // taps j < Width, then the bias
  const float *x, *dy;
  int64_t seq, cols;
  const float *history; // [batch, Width - 1, cols] before t = 0, or nullptr (zeros)
  __device__ void operator()(int64_t r, int64_t c, double *acc) const {
    const double g = double(dy[r * cols + c]);
    const int64_t t = r % seq;
    for (int j = 0; j < Width; ++j) {
      const int64_t back = Width - 1 - j; // x[t - back] of the same sequence
      if (t >= back)
        acc[j] += g * double(x[(r - back) * cols + c]);
      else if (history)
        acc[j] += g * double(history[((r / seq) * (Width - 1) + Width - 1 - back + t) * cols + c]);
    }
    acc[Width] += g;
  }
};
struct PlainColumns {
  const float *x;
  int64_t cols;
  __device__ void operator()(int64_t r, int64_t c, double *acc) const {
    acc[0] += double(x[r * cols + c]);
  }
};

// --- rows: one warp per row, the row's sums in double, lanes combined by a fixed butterfly ------
__device__ double warpSum(double v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename Out>
__global__ void rmsNormRowsKernel(const float *x, const float *w, int64_t rows, int64_t dim,
                                  double eps, Out *y) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows)
    return;
  const float *xr = x + r * dim;
  double ss = 0.0;
  for (int64_t i = lane; i < dim; i += 32)
    ss += double(xr[i]) * double(xr[i]);
  const double inv = 1.0 / sqrt(warpSum(ss) / double(dim) + eps);
  for (int64_t i = lane; i < dim; i += 32)
    put(y, r * dim + i, float(double(w[i]) * (double(xr[i]) * inv)));
}

__global__ void layerNormRowsKernel(const float *x, const float *w, const float *b, int64_t rows,
                                    int64_t dim, double eps, float *y) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows)
    return;
  const float *xr = x + r * dim;
  double sum = 0.0;
  for (int64_t i = lane; i < dim; i += 32)
    sum += double(xr[i]);
  const double mean = warpSum(sum) / double(dim);
  double ss = 0.0;
  for (int64_t i = lane; i < dim; i += 32) {
    const double d = double(xr[i]) - mean;
    ss += d * d;
  }
  const double inv = 1.0 / sqrt(warpSum(ss) / double(dim) + eps);
  for (int64_t i = lane; i < dim; i += 32)
    y[r * dim + i] = float(double(w[i]) * ((double(xr[i]) - mean) * inv) + double(b[i]));
}

__global__ void rmsNormBackwardRowsWarp(const float *x, const float *w, const float *dy,
                                        int64_t rows, int64_t dim, double eps, float *dx,
                                        double *invs) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows)
    return;
  const float *xr = x + r * dim, *dyr = dy + r * dim;
  double ss = 0.0, gDotX = 0.0;
  for (int64_t i = lane; i < dim; i += 32) {
    ss += double(xr[i]) * double(xr[i]);
    gDotX += double(dyr[i]) * double(w[i]) * double(xr[i]);
  }
  const double inv = 1.0 / sqrt(warpSum(ss) / double(dim) + eps);
  gDotX = warpSum(gDotX);
  if (lane == 0)
    invs[r] = inv;
  const double coefficient = inv * inv * inv * gDotX / double(dim);
  for (int64_t i = lane; i < dim; i += 32)
    dx[r * dim + i] = float(inv * double(dyr[i]) * double(w[i]) - double(xr[i]) * coefficient);
}

// The same dx, with dw's column sums in the same pass (the two-kernel form read x and dy twice
// from memory): each warp takes kRmsRowsPerWarp consecutive rows, lane l keeps the partial sums
// of columns l, l + 32, ... (CPL of them) in double registers, the block's warps are added in
// order through shared memory into partials[block][dim], and columnFinishKernel adds the blocks
// in order. A row's second pass reads it from L1. Fixed order throughout: deterministic.
constexpr int kRmsRowsPerWarp = 16;
template <int CPL>
__global__ void __launch_bounds__(kThreads)
    rmsNormBackwardFused(const float *x, const float *w, const float *dy, int64_t rows,
                         int64_t dim, double eps, float *dx, double *partials) {
  extern __shared__ double warpPartials[]; // [warps][dim]
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  double acc[CPL];
#pragma unroll
  for (int j = 0; j < CPL; ++j)
    acc[j] = 0.0;
  const int64_t first = (int64_t(blockIdx.x) * warps + warp) * kRmsRowsPerWarp;
  for (int64_t r = first; r < first + kRmsRowsPerWarp && r < rows; ++r) {
    const float *xr = x + r * dim, *dyr = dy + r * dim;
    double ss = 0.0, gDotX = 0.0;
#pragma unroll
    for (int j = 0; j < CPL; ++j) {
      const int64_t i = lane + 32 * j;
      if (i < dim) {
        ss += double(xr[i]) * double(xr[i]);
        gDotX += double(dyr[i]) * double(w[i]) * double(xr[i]);
      }
    }
    const double inv = 1.0 / sqrt(warpSum(ss) / double(dim) + eps);
    gDotX = warpSum(gDotX);
    const double coefficient = inv * inv * inv * gDotX / double(dim);
#pragma unroll
    for (int j = 0; j < CPL; ++j) {
      const int64_t i = lane + 32 * j;
      if (i < dim) {
        dx[r * dim + i] = float(inv * double(dyr[i]) * double(w[i]) - double(xr[i]) * coefficient);
        acc[j] += double(dyr[i]) * double(xr[i]) * inv;
      }
    }
  }
#pragma unroll
  for (int j = 0; j < CPL; ++j)
    if (lane + 32 * j < dim)
      warpPartials[warp * dim + lane + 32 * j] = acc[j];
  __syncthreads();
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    double sum = 0.0;
    for (int k = 0; k < warps; ++k)
      sum += warpPartials[k * dim + c];
    partials[int64_t(blockIdx.x) * dim + c] = sum;
  }
}

__global__ void layerNormBackwardRowsWarp(const float *x, const float *w, const float *dy,
                                          int64_t rows, int64_t dim, double eps, float *dx,
                                          double *stats) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows)
    return;
  const float *xr = x + r * dim, *dyr = dy + r * dim;
  double sum = 0.0;
  for (int64_t i = lane; i < dim; i += 32)
    sum += double(xr[i]);
  const double mean = warpSum(sum) / double(dim);
  double ss = 0.0;
  for (int64_t i = lane; i < dim; i += 32) {
    const double d = double(xr[i]) - mean;
    ss += d * d;
  }
  const double inv = 1.0 / sqrt(warpSum(ss) / double(dim) + eps);
  if (lane == 0) {
    stats[2 * r] = mean;
    stats[2 * r + 1] = inv;
  }
  double sumG = 0.0, sumGXhat = 0.0;
  for (int64_t i = lane; i < dim; i += 32) {
    const double xh = (double(xr[i]) - mean) * inv;
    const double g = double(dyr[i]) * double(w[i]);
    sumG += g;
    sumGXhat += g * xh;
  }
  const double meanG = warpSum(sumG) / double(dim), meanGXhat = warpSum(sumGXhat) / double(dim);
  for (int64_t i = lane; i < dim; i += 32) {
    const double xh = (double(xr[i]) - mean) * inv;
    dx[r * dim + i] = float(inv * (double(dyr[i]) * double(w[i]) - meanG - xh * meanGXhat));
  }
}

int warpRowBlocks(int64_t rows) { return int((rows * 32 + kThreads - 1) / kThreads); }

// --- forward kernels ----------------------------------------------------------------------------
__global__ void embeddingKernel(const int32_t *tokens, int64_t n, const float *table, int64_t dim,
                                float *y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * dim)
    return;
  const int64_t row = i / dim, c = i % dim;
  y[i] = table[int64_t(tokens[row]) * dim + c];
}

template <typename Index>
__global__ void causalConvKernel(const float *x, const float *kernel, const float *bias,
                                 int64_t batch, int64_t seq, int64_t dim, int64_t width,
                                 float *y, const float *history) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= batch * seq * dim)
    return;
  const Index ii = Index(i), d = Index(dim), sq = Index(seq);
  const int64_t c = ii % d, t = (ii / d) % sq, bi = ii / (d * sq);
  double acc = double(bias[c]);
  for (int64_t j = 0; j < width; ++j) {
    const int64_t src = t - width + 1 + j;
    if (src >= 0)
      acc += double(kernel[j * dim + c]) * double(x[(bi * seq + src) * dim + c]);
    else if (history)
      acc += double(kernel[j * dim + c]) *
             double(history[(bi * (width - 1) + width - 1 + src) * dim + c]);
  }
  y[i] = float(acc);
}

// Width 4 (the model's kernel): one thread per (sequence, tile of kConvSteps time steps, channel),
// channels fastest so a warp reads 32 consecutive floats of a row. The taps and bias sit in
// registers as doubles, x slides through a 3-value window: each x is read once (plus a 3-step
// halo per tile). Per output the same double sum as causalConvKernel: bias, then taps j = 0..3,
// skipping those before the sequence start. All indices fit 32 bits (the launcher checks).
constexpr int kConvSteps = 16;
__global__ void causalConv4Kernel(const float *x, const float *kernel, const float *bias,
                                  int32_t batch, int32_t seq, int32_t dim, int32_t tiles,
                                  float *y, const float *history) {
  const int32_t i = int32_t(blockIdx.x) * int32_t(blockDim.x) + int32_t(threadIdx.x);
  if (i >= batch * tiles * dim)
    return;
  const int32_t c = i % dim, rest = i / dim, tile = rest % tiles, bi = rest / tiles;
  const int32_t t0 = tile * kConvSteps;
  const int32_t n = seq - t0 < kConvSteps ? seq - t0 : kConvSteps;
  const float *xs = x + (bi * seq * dim + c);
  float *ys = y + (bi * seq * dim + c);
  const double k0 = double(kernel[c]), k1 = double(kernel[dim + c]),
               k2 = double(kernel[2 * dim + c]), k3 = double(kernel[3 * dim + c]);
  const double b = double(bias[c]);
  // w0 = x[t - 3], w1 = x[t - 2], w2 = x[t - 1] (read only where t - back >= 0; before the
  // sequence start from the history, x[-3..-1], when there is one).
  const float *hs = history ? history + (bi * 3 * dim + c) : nullptr;
  const bool hist = hs != nullptr;
  double w0 = t0 >= 3 ? double(xs[(t0 - 3) * dim]) : hist ? double(hs[t0 * dim]) : 0.0;
  double w1 = t0 >= 2 ? double(xs[(t0 - 2) * dim]) : hist ? double(hs[(t0 + 1) * dim]) : 0.0;
  double w2 = t0 >= 1 ? double(xs[(t0 - 1) * dim]) : hist ? double(hs[(t0 + 2) * dim]) : 0.0;
  float v[kConvSteps];
#pragma unroll
  for (int u = 0; u < kConvSteps; ++u)
    v[u] = u < n ? xs[(t0 + u) * dim] : 0.f;
#pragma unroll
  for (int u = 0; u < kConvSteps; ++u) {
    const int32_t t = t0 + u;
    const double cur = double(v[u]);
    double acc = b;
    if (t >= 3 || hist)
      acc += k0 * w0;
    if (t >= 2 || hist)
      acc += k1 * w1;
    if (t >= 1 || hist)
      acc += k2 * w2;
    acc += k3 * cur;
    if (u < n)
      ys[t * dim] = float(acc);
    w0 = w1;
    w1 = w2;
    w2 = cur;
  }
}

// The same rotation with the (position, pair) angles' cos and sin computed once per block into
// shared memory (period x pairs entries, the same double expressions as ropeKernel), each
// thread then rotating several pairs: the double pow/cos/sin per element was most of the cost.
constexpr int kRopeTable = 1024; // entries of shared table (period x pairs) this path takes
__global__ void ropeTableKernel(const float *x, int64_t total, int32_t heads, int32_t headDim,
                                int32_t seq, int32_t period, double theta, double direction,
                                float *y) {
  __shared__ double co[kRopeTable], si[kRopeTable];
  const int32_t pairs = headDim / 2;
  for (int32_t e = threadIdx.x; e < period * pairs; e += blockDim.x) {
    const int32_t p = e % pairs;
    const double position = double(e / pairs);
    const double angle = position * pow(theta, -2.0 * double(p) / double(headDim));
    co[e] = cos(angle);
    si[e] = direction * sin(angle);
  }
  __syncthreads();
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i % pairs, row = i / pairs; // row = (bi * seq + t) * heads + h
    const int32_t t = int32_t((row / heads) % seq);
    const int32_t e = (t % period) * pairs + int32_t(p);
    const float *xh = x + row * headDim;
    const double x0 = xh[2 * p], x1 = xh[2 * p + 1];
    y[row * headDim + 2 * p] = float(x0 * co[e] - x1 * si[e]);
    y[row * headDim + 2 * p + 1] = float(x0 * si[e] + x1 * co[e]);
  }
}

__global__ void ropeKernel(const float *x, int64_t batch, int64_t seq, int64_t heads,
                           int64_t headDim, int64_t period, double theta, double direction,
                           float *y) {
  const int64_t pairs = headDim / 2;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= batch * seq * heads * pairs)
    return;
  const int64_t p = i % pairs, row = i / pairs; // row = (bi * seq + t) * heads + h
  const int64_t t = (row / heads) % seq;
  const double position = double(t % period);
  const double angle = position * pow(theta, -2.0 * double(p) / double(headDim));
  const double co = cos(angle), si = direction * sin(angle);
  const float *xh = x + row * headDim;
  const double x0 = xh[2 * p], x1 = xh[2 * p + 1];
  y[row * headDim + 2 * p] = float(x0 * co - x1 * si);
  y[row * headDim + 2 * p + 1] = float(x0 * si + x1 * co);
}

// Index: int32_t when the tensor has fewer than 2^31 elements (64-bit division costs several
// times more than the loads).
template <typename Index, typename Out>
__global__ void binaryKernel(int op, const float *a, Strides sa, const float *b, Strides sb,
                             Dims out, int64_t total, Out *y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total)
    return;
  Index rem = Index(i), oa = 0, ob = 0;
  for (int d = out.rank - 1; d >= 0; --d) {
    const Index extent = Index(out.d[d]);
    const Index idx = rem % extent;
    rem /= extent;
    oa += idx * Index(sa.s[d]);
    ob += idx * Index(sb.s[d]);
  }
  put(y, i, binaryOp(op, a[oa], b[ob]));
}

// Same-shape elementwise kernels: 4 elements per thread through 16-byte loads and stores (the
// scalar form reached about half the copy bandwidth), the same math per element. `Flat4` works
// on whole float4s; the launcher checks 16-byte alignment and handles a tail of n % 4 elements.
__device__ float4 load4(const float *p, int64_t i) { return reinterpret_cast<const float4 *>(p)[i]; }

template <typename Out>
__global__ void binaryFlatKernel(int op, const float *a, const float *b, int64_t quads,
                                 int64_t total, Out *y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < quads) {
    const float4 x = load4(a, i), z = load4(b, i);
    put4(y, i,
         make_float4(binaryOp(op, x.x, z.x), binaryOp(op, x.y, z.y), binaryOp(op, x.z, z.z),
                     binaryOp(op, x.w, z.w)));
  } else if (const int64_t e = 4 * quads + (i - quads); e < total) {
    put(y, e, binaryOp(op, a[e], b[e]));
  }
}

__global__ void unaryKernel(int op, const float *x, int64_t quads, int64_t n, double alpha,
                            float *y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < quads) {
    const float4 v = load4(x, i);
    put4(y, i,
         make_float4(unaryF(op, v.x, alpha), unaryF(op, v.y, alpha), unaryF(op, v.z, alpha),
                     unaryF(op, v.w, alpha)));
  } else if (const int64_t e = 4 * quads + (i - quads); e < n) {
    y[e] = unaryF(op, x[e], alpha);
  }
}

__global__ void unaryBackwardKernel(int op, const float *x, const float *y, const float *dy,
                                    int64_t quads, int64_t n, double alpha, float *dx) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < quads) {
    const float4 u = load4(x, i), v = load4(y, i), g = load4(dy, i);
    put4(dx, i,
         make_float4(unaryBwdF(op, u.x, v.x, g.x, alpha), unaryBwdF(op, u.y, v.y, g.y, alpha),
                     unaryBwdF(op, u.z, v.z, g.z, alpha), unaryBwdF(op, u.w, v.w, g.w, alpha)));
  } else if (const int64_t e = 4 * quads + (i - quads); e < n) {
    dx[e] = unaryBwdF(op, x[e], y[e], dy[e], alpha);
  }
}

__global__ void reduceKernel(int op, const float *x, int64_t rows, int64_t cols, float *y) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows)
    return;
  const float *xr = x + r * cols;
  if (op == int(cpu::ReduceOp::max)) {
    float best = -INFINITY;
    for (int64_t c = 0; c < cols; ++c)
      if (xr[c] > best || isnan(xr[c])) {
        best = xr[c];
        if (isnan(best))
          break;
      }
    y[r] = best;
    return;
  }
  double sum = 0.0;
  for (int64_t c = 0; c < cols; ++c)
    sum += double(xr[c]);
  y[r] = float(op == int(cpu::ReduceOp::sum) ? sum : sum / double(cols));
}

// y (shape out) walked in order; x read through srcStride (x's stride of each y dim).
template <typename Index>
__global__ void transposeKernel(const float *x, Dims out, Strides src, int64_t total, float *y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total)
    return;
  Index rem = Index(i), off = 0;
  for (int d = out.rank - 1; d >= 0; --d) {
    const Index extent = Index(out.d[d]);
    off += (rem % extent) * Index(src.s[d]);
    rem /= extent;
  }
  y[i] = x[off];
}

// The transposes below first collapse the permutation on the host (size-1 dims dropped, input
// dims that stay adjacent and in order merged), then walk the output in order with 32-bit index
// math. Walk32 maps an index over the output dims [0, rank) to its source offset in x.
struct Walk32 {
  int rank = 0;
  uint32_t d[kMaxRank] = {}; // output extents
  uint32_t s[kMaxRank] = {}; // x's stride of each output dim
};

__device__ __forceinline__ uint32_t walkOffset(const Walk32 &w, uint32_t i) {
  if (w.rank == 0)
    return 0;
  uint32_t off = 0;
  for (int k = w.rank - 1; k > 0; --k) {
    const uint32_t q = i / w.d[k];
    off += (i - q * w.d[k]) * w.s[k];
    i = q;
  }
  return off + i * w.s[0];
}

// The last dimension kept in place (the head-split transposes): kLanes threads per row of row4
// float4s, 256 / kLanes rows per pass and kRowsPerThread passes per block; the source offset of
// a row is computed once per row; all loads are issued before the stores.
constexpr int kRowsPerThread = 4;
template <int kLanes>
__global__ void __launch_bounds__(kThreads)
    transposeRowsKernel(const float4 *__restrict__ x, Walk32 rowWalk, uint32_t rows, uint32_t row4,
                        float4 *__restrict__ y) {
  constexpr uint32_t kPass = kThreads / kLanes;
  const uint32_t lane = threadIdx.x % kLanes;
  const uint32_t first = blockIdx.x * (kPass * kRowsPerThread) + threadIdx.x / kLanes;
  uint32_t src[kRowsPerThread];
#pragma unroll
  for (int k = 0; k < kRowsPerThread; ++k) {
    const uint32_t r = first + uint32_t(k) * kPass;
    src[k] = r < rows ? walkOffset(rowWalk, r) : 0;
  }
  for (uint32_t c = lane; c < row4; c += kLanes) {
    float4 v[kRowsPerThread];
#pragma unroll
    for (int k = 0; k < kRowsPerThread; ++k)
      if (first + uint32_t(k) * kPass < rows)
        v[k] = __ldg(x + src[k] + c);
#pragma unroll
    for (int k = 0; k < kRowsPerThread; ++k) {
      const uint32_t r = first + uint32_t(k) * kPass;
      if (r < rows)
        y[r * row4 + c] = v[k];
    }
  }
}

// The last two dims swapped ([.., R, C] -> [.., C, R], outer dims permuted freely): each R x C
// matrix is contiguous in x and in y. A block stages perBlock whole matrices in shared memory
// (rows padded to C + 1: no bank conflicts) with contiguous loads, then writes its contiguous
// output range.
constexpr uint32_t kMatFloats = 2048, kMatMax = 64;
__global__ void __launch_bounds__(kThreads)
    transposeMatsKernel(const float *__restrict__ x, Walk32 matWalk, uint32_t mats, uint32_t R,
                        uint32_t C, uint32_t perBlock, float *__restrict__ y) {
  __shared__ float tile[2 * kMatFloats];
  __shared__ uint32_t base[kMatMax];
  const uint32_t m0 = blockIdx.x * perBlock;
  const uint32_t count = min(perBlock, mats - m0);
  if (threadIdx.x < count)
    base[threadIdx.x] = walkOffset(matWalk, m0 + threadIdx.x);
  __syncthreads();
  const uint32_t M = R * C, Cp = C + 1, Mp = R * Cp, n = count * M;
  for (uint32_t e = threadIdx.x; e < n; e += kThreads) {
    const uint32_t m = e / M, w = e - m * M, r = w / C, c = w - r * C;
    tile[m * Mp + r * Cp + c] = __ldg(x + base[m] + w);
  }
  __syncthreads();
  float *yb = y + m0 * M;
  for (uint32_t e = threadIdx.x; e < n; e += kThreads) {
    const uint32_t m = e / M, w = e - m * M, c = w / R, r = w - c * R;
    yb[e] = tile[m * Mp + r * Cp + c];
  }
}

__global__ void sliceKernel(const float *x, int64_t outer, int64_t extent, int64_t inner,
                            int64_t start, int64_t size, float *y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= outer * size * inner)
    return;
  const int64_t in = i % inner, a = (i / inner) % size, o = i / (inner * size);
  y[i] = x[(o * extent + start + a) * inner + in];
}

__global__ void insertKernel(const float *src, int64_t outer, int64_t extent, int64_t inner,
                             int64_t start, int64_t size, float *dst) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= outer * size * inner)
    return;
  const int64_t in = i % inner, a = (i / inner) % size, o = i / (inner * size);
  dst[(o * extent + start + a) * inner + in] = src[i];
}

__global__ void trilKernel(const float *x, int64_t total, int64_t n, float *y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total)
    return;
  const int64_t c = i % n, r = (i / n) % n;
  y[i] = c > r ? 0.0f : x[i];
}

__global__ void fillKernel(float *y, int64_t n, float value) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n)
    y[i] = value;
}

__global__ void iotaKernel(float *y, int64_t n, double start) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n)
    y[i] = float(start + double(i));
}

// One block per row: the max in float, exp in float, the sum in double (a fixed tree).
__global__ void softmaxXentKernel(const float *logits, const int32_t *targets, int64_t vocab,
                                  int64_t ignoreToken, float *loss, float *mask) {
  __shared__ double sumShared[kRowThreads];
  __shared__ float maxShared[kRowThreads];
  const int64_t i = blockIdx.x;
  if (targets[i] == ignoreToken) {
    if (threadIdx.x == 0)
      loss[i] = mask[i] = 0.0f;
    return;
  }
  const float *row = logits + i * vocab;
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    m = (row[v] >= m || isnan(row[v])) ? row[v] : m;
  const float rowMax = blockMax(m, maxShared);
  double s = 0.0;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    s += double(expf(row[v] - rowMax));
  const double sumExp = blockSum(s, sumShared);
  if (threadIdx.x == 0) {
    const double lse = double(rowMax) + log(sumExp);
    loss[i] = float(lse - double(row[targets[i]]));
    mask[i] = 1.0f;
  }
}

// One block: each sequence's sums by the block's fixed tree (one thread did all of it in 1.2 ms at
// 16 x 2048), the sequences in order.
__global__ void maskedMeanKernel(const float *loss, const float *mask, int64_t batch, int64_t seq,
                                 float *out) {
  __shared__ double shared[kRowThreads];
  double total = 0.0;
  for (int64_t b = 0; b < batch; ++b) {
    double weighted = 0.0, count = 0.0;
    for (int64_t t = threadIdx.x; t < seq; t += blockDim.x) {
      weighted += double(loss[b * seq + t]) * double(mask[b * seq + t]);
      count += double(mask[b * seq + t]);
    }
    weighted = blockSum(weighted, shared);
    count = blockSum(count, shared);
    total += weighted / fmax(count, 1e-10);
  }
  if (threadIdx.x == 0)
    out[0] = float(total / double(batch));
}

// --- backward kernels ---------------------------------------------------------------------------
__global__ void embeddingBackwardKernel(const int64_t *offsets, const int64_t *positions,
                                        const float *dy, int64_t vocab, int64_t dim,
                                        float *dtable) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= vocab * dim)
    return;
  const int64_t v = i / dim, c = i % dim;
  double acc = 0.0;
  for (int64_t p = offsets[v]; p < offsets[v + 1]; ++p)
    acc += double(dy[positions[p] * dim + c]);
  dtable[i] = float(acc);
}

template <typename Index>
__global__ void causalConvBackwardInput(const float *kernel, const float *dy, int64_t batch,
                                        int64_t seq, int64_t dim, int64_t width, float *dx) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= batch * seq * dim)
    return;
  const Index ii = Index(i), d = Index(dim), sq = Index(seq);
  const int64_t c = ii % d, s = (ii / d) % sq, bi = ii / (d * sq);
  double acc = 0.0;
  for (int64_t j = 0; j < width; ++j) {
    const int64_t t = s + width - 1 - j;
    if (t >= seq)
      continue;
    acc += double(kernel[j * dim + c]) * double(dy[(bi * seq + t) * dim + c]);
  }
  dx[i] = float(acc);
}

// One thread per (tap j or the bias, channel c): sums over batch then time, as the CPU does.
__global__ void causalConvBackwardParams(const float *x, const float *dy, int64_t batch,
                                         int64_t seq, int64_t dim, int64_t width, float *dkernel,
                                         float *dbias, const float *history) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= (width + 1) * dim)
    return;
  const int64_t j = i / dim, c = i % dim;
  double acc = 0.0;
  for (int64_t bi = 0; bi < batch; ++bi)
    for (int64_t t = 0; t < seq; ++t) {
      const double g = double(dy[(bi * seq + t) * dim + c]);
      if (j == width) {
        acc += g;
        continue;
      }
      const int64_t src = t - width + 1 + j;
      if (src >= 0)
        acc += g * double(x[(bi * seq + src) * dim + c]);
      else if (history)
        acc += g * double(history[(bi * (width - 1) + width - 1 + src) * dim + c]);
    }
  if (j == width)
    dbias[c] = float(acc);
  else
    dkernel[j * dim + c] = float(acc);
}

// Width 4: the input gradient and the column partials of ConvParamGrads<4> in one pass. The
// blocks, lanes and order are columnPartialsKernel's (chunk of kChunkRows rows x kColTile
// columns, lane y summing rows r0 + y, r0 + y + kRowLanes, ... in order, then lanes in order), so
// the partials (and, through columnFinishKernel, the sums) are the same bits. The chunk goes
// through shared memory kConvRows rows at a time: x rows [rs - 3, rs + kConvRows) and dy rows
// [rs, rs + kConvRows + 3), each element read once from memory; the shifted x and dy come from
// shared memory. dx per row is causalConvBackwardInput's sum (taps j = 0..3, in order). All
// indices fit 32 bits (the launcher checks).
constexpr int kConvRows = 32; // a multiple of kRowLanes
__global__ void __launch_bounds__(kColTile *kRowLanes)
    causalConv4BackwardKernel(const float *x, const float *kernel, const float *dy, int32_t rows,
                              int32_t seq, int32_t dim, float *dx, double *partials,
                              const float *history) {
  __shared__ float xs[kConvRows + 3][kColTile]; // xs[e] = x[rs - 3 + e]
  __shared__ float gs[kConvRows + 3][kColTile]; // gs[e] = dy[rs + e]
  __shared__ double lanes[kRowLanes][5][kColTile];
  const int32_t tx = int32_t(threadIdx.x), ty = int32_t(threadIdx.y);
  const int32_t c = int32_t(blockIdx.x) * kColTile + tx;
  const bool live = c < dim;
  const int32_t r0 = int32_t(blockIdx.y) * kChunkRows;
  const int32_t r1 = r0 + kChunkRows < rows ? r0 + kChunkRows : rows;
  double k0 = 0.0, k1 = 0.0, k2 = 0.0, k3 = 0.0;
  if (live) {
    k0 = double(kernel[c]);
    k1 = double(kernel[dim + c]);
    k2 = double(kernel[2 * dim + c]);
    k3 = double(kernel[3 * dim + c]);
  }
  double acc[5] = {0.0, 0.0, 0.0, 0.0, 0.0};
  for (int32_t rs = r0; rs < r1; rs += kConvRows) {
    for (int32_t e = ty; e < kConvRows + 3; e += kRowLanes) {
      const int32_t rx = rs - 3 + e, rg = rs + e;
      xs[e][tx] = live && rx >= 0 && rx < rows ? x[rx * dim + c] : 0.f;
      gs[e][tx] = live && rg < rows ? dy[rg * dim + c] : 0.f;
    }
    __syncthreads();
    const int32_t re = rs + kConvRows < r1 ? rs + kConvRows : r1;
    if (live)
      for (int32_t r = rs + ty; r < re; r += kRowLanes) {
        const int32_t e = r - rs, t = r % seq;
        const double g = double(gs[e][tx]);
        // ConvParamGrads<4>: tap j pairs dy[t] with x[t - (3 - j)] (xs[e + j]); before the
        // sequence start with the history's x[t - (3 - j)] = h[t + j], when there is one.
        const float *h = history ? history + ((r / seq) * 3 * dim + c) : nullptr;
        if (t >= 3)
          acc[0] += g * double(xs[e][tx]);
        else if (h)
          acc[0] += g * double(h[t * dim]);
        if (t >= 2)
          acc[1] += g * double(xs[e + 1][tx]);
        else if (h)
          acc[1] += g * double(h[(t + 1) * dim]);
        if (t >= 1)
          acc[2] += g * double(xs[e + 2][tx]);
        else if (h)
          acc[2] += g * double(h[(t + 2) * dim]);
        acc[3] += g * double(xs[e + 3][tx]);
        acc[4] += g;
        // causalConvBackwardInput: tap j pairs dx[s] with dy[s + 3 - j] (gs[e + 3 - j]).
        double d = 0.0;
        if (t + 3 < seq)
          d += k0 * double(gs[e + 3][tx]);
        if (t + 2 < seq)
          d += k1 * double(gs[e + 2][tx]);
        if (t + 1 < seq)
          d += k2 * double(gs[e + 1][tx]);
        d += k3 * g;
        dx[r * dim + c] = float(d);
      }
    __syncthreads();
  }
  for (int k = 0; k < 5; ++k)
    lanes[ty][k][tx] = acc[k];
  __syncthreads();
  if (ty == 0 && live)
    for (int k = 0; k < 5; ++k) {
      double sum = 0.0;
      for (int l = 0; l < kRowLanes; ++l)
        sum += lanes[l][k][tx];
      partials[(int32_t(blockIdx.y) * 5 + k) * dim + c] = sum;
    }
}

// y (shape `to`, right-aligned in rank `from.rank`): for each, the sum over the reduced dims in
// row-major order of x.
__global__ void sumToKernel(const float *x, Dims from, Strides fromStrides, Dims kept,
                            int64_t outTotal, Dims reduced, Strides reducedStrides,
                            int64_t reducedTotal, Strides keptStrides, float *y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= outTotal)
    return;
  // The x offset of the output element: its index along each kept dim.
  int64_t rem = i, base = 0;
  for (int d = kept.rank - 1; d >= 0; --d) {
    base += (rem % kept.d[d]) * keptStrides.s[d];
    rem /= kept.d[d];
  }
  double acc = 0.0;
  for (int64_t r = 0; r < reducedTotal; ++r) {
    int64_t rr = r, off = base;
    for (int d = reduced.rank - 1; d >= 0; --d) {
      off += (rr % reduced.d[d]) * reducedStrides.s[d];
      rr /= reduced.d[d];
    }
    acc += double(x[off]);
  }
  y[i] = float(acc);
}

__global__ void softmaxXentBackwardKernel(const float *logits, const int32_t *targets,
                                          const float *dloss, int64_t vocab, int64_t ignoreToken,
                                          float *dlogits) {
  __shared__ double sumShared[kRowThreads];
  __shared__ float maxShared[kRowThreads];
  const int64_t i = blockIdx.x;
  const float *row = logits + i * vocab;
  float *out = dlogits + i * vocab;
  if (targets[i] == ignoreToken) {
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
      out[v] = 0.0f;
    return;
  }
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    m = (row[v] >= m || isnan(row[v])) ? row[v] : m;
  const float rowMax = blockMax(m, maxShared);
  double s = 0.0;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
    const float e = expf(row[v] - rowMax);
    out[v] = e;
    s += double(e);
  }
  const double sumExp = blockSum(s, sumShared);
  const double scale = double(dloss[i]) / sumExp;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    out[v] = float(scale * double(out[v]));
  __syncthreads();
  if (threadIdx.x == 0)
    out[targets[i]] = float(double(out[targets[i]]) - double(dloss[i]));
}

__global__ void maskedMeanBackwardKernel(const float *mask, const float *dout, int64_t batch,
                                         int64_t seq, float *dloss) {
  const int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch)
    return;
  double count = 0.0;
  for (int64_t t = 0; t < seq; ++t)
    count += double(mask[b * seq + t]);
  const double scale = double(dout[0]) / (double(batch) * fmax(count, 1e-10));
  for (int64_t t = 0; t < seq; ++t)
    dloss[b * seq + t] = float(scale * double(mask[b * seq + t]));
}

__global__ void accumulateKernel(float *acc, const float *g, int64_t n, float scale) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n)
    acc[i] = __fadd_rn(acc[i], __fmul_rn(scale, g[i]));
}

// --- fused elementwise --------------------------------------------------------------------------
// Each thread evaluates the step program on groups of 4 consecutive elements (a float4), in a
// grid-stride loop. The block first copies the step and input descriptors into shared memory;
// each thread's slots live in a slot file in shared memory (slot s of thread t at float4
// `s * blockDim.x + t`: conflict-free 16-byte accesses), so reading a slot chosen at run time
// costs one shared load, not a local-memory round trip. The inputs are copied into the file with
// cp.async kFusedStages - 1 groups ahead (one input buffer per stage): the next groups' loads are
// in flight while this group computes. The last step stays in registers and goes straight to `y`.
// Every element sees exactly the operations of the one-element-per-thread kernel: binaryOp,
// unaryF and unaryBwdF on the same operands, in the same order.
constexpr int kFusedFull = 0;          // as many elements as the result, 16-byte aligned
constexpr int kFusedFullUnaligned = 1; // as many elements as the result, copied 4 bytes at a time
constexpr int kFusedBroadcast = 2;     // element stride per result dimension
constexpr int kFusedScalar = 3;        // one repeated element: stored in the file once
constexpr int kFusedStages = 3;        // input buffers: 2 groups of copies in flight

struct FusedOp {
  int kind, op;
  int a, b, c; // float4 index of the argument slots in the file (file slot * blockDim.x)
  double alpha;
};
template <typename Index> struct FusedIn {
  const float *data;
  int mode;
  Index stride[kMaxRank];
};

// Dynamic shared memory: kFusedStages op tables (one per input buffer), the inputs, the file.
__host__ __device__ inline size_t fusedAlign16(size_t n) { return (n + 15) / 16 * 16; }
__host__ __device__ inline size_t fusedInsOffset(int nSteps) {
  return fusedAlign16(size_t(kFusedStages) * size_t(nSteps) * sizeof(FusedOp));
}
template <typename Index> __host__ __device__ inline size_t fusedFileOffset(int nIn, int nSteps) {
  return fusedInsOffset(nSteps) + fusedAlign16(size_t(nIn) * sizeof(FusedIn<Index>));
}
// File slots: buffer 0 of the inputs, the steps but the last, then buffers 1.. of the inputs.
__host__ __device__ inline int fusedFileSlots(int nIn, int nSteps) {
  return kFusedStages * nIn + nSteps - 1;
}
__device__ inline int fusedFileSlot(int slot, int buffer, int nIn, int nSteps) {
  return slot >= nIn || buffer == 0 ? slot : nIn + nSteps - 1 + (buffer - 1) * nIn + slot;
}

__device__ inline void fusedCopy16(float4 *dst, const float *src) {
  asm volatile(
      "cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(unsigned(__cvta_generic_to_shared(dst))),
      "l"(__cvta_generic_to_global(src))
      : "memory");
}
__device__ inline void fusedCopy4(float *dst, const float *src) {
  asm volatile(
      "cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(unsigned(__cvta_generic_to_shared(dst))),
      "l"(__cvta_generic_to_global(src))
      : "memory");
}
__device__ inline void fusedCommit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ inline void fusedWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

template <int Op> __device__ float4 binary4(float4 a, float4 b) {
  return make_float4(binaryOp(Op, a.x, b.x), binaryOp(Op, a.y, b.y), binaryOp(Op, a.z, b.z),
                     binaryOp(Op, a.w, b.w));
}
template <int Op> __device__ float4 unary4(float4 a, double alpha) {
  return make_float4(unaryF(Op, a.x, alpha), unaryF(Op, a.y, alpha), unaryF(Op, a.z, alpha),
                     unaryF(Op, a.w, alpha));
}
template <int Op> __device__ float4 unaryBwd4(float4 x, float4 y, float4 dy, double alpha) {
  return make_float4(unaryBwdF(Op, x.x, y.x, dy.x, alpha), unaryBwdF(Op, x.y, y.y, dy.y, alpha),
                     unaryBwdF(Op, x.z, y.z, dy.z, alpha), unaryBwdF(Op, x.w, y.w, dy.w, alpha));
}
// One dispatch per step for the 4 elements; each case is binaryOp / unaryF / unaryBwdF with the
// op fixed (other values fall to the same defaults: max, add_scalar).
__device__ float4 fusedBinary(int op, float4 a, float4 b) {
  switch (op) {
  case int(cpu::BinaryOp::add):
    return binary4<int(cpu::BinaryOp::add)>(a, b);
  case int(cpu::BinaryOp::sub):
    return binary4<int(cpu::BinaryOp::sub)>(a, b);
  case int(cpu::BinaryOp::mul):
    return binary4<int(cpu::BinaryOp::mul)>(a, b);
  case int(cpu::BinaryOp::div):
    return binary4<int(cpu::BinaryOp::div)>(a, b);
  default:
    return binary4<int(cpu::BinaryOp::max)>(a, b);
  }
}
// add_scalar is the default case.
#define TTT_FUSED_UNARY_CASES(CASE)                                                                \
  CASE(neg)                                                                                        \
  CASE(exp)                                                                                        \
  CASE(log)                                                                                        \
  CASE(sqrt)                                                                                       \
  CASE(rsqrt)                                                                                      \
  CASE(reciprocal)                                                                                 \
  CASE(sigmoid)                                                                                    \
  CASE(silu)                                                                                       \
  CASE(gelu_tanh)                                                                                  \
  CASE(relu)                                                                                       \
  CASE(scale)
__device__ float4 fusedUnary(int op, float4 a, double alpha) {
  switch (op) {
#define TTT_CASE(name)                                                                             \
  case int(cpu::UnaryOp::name):                                                                    \
    return unary4<int(cpu::UnaryOp::name)>(a, alpha);
    TTT_FUSED_UNARY_CASES(TTT_CASE)
#undef TTT_CASE
  default:
    return unary4<int(cpu::UnaryOp::add_scalar)>(a, alpha);
  }
}
__device__ float4 fusedUnaryBwd(int op, float4 x, float4 y, float4 dy, double alpha) {
  switch (op) {
#define TTT_CASE(name)                                                                             \
  case int(cpu::UnaryOp::name):                                                                    \
    return unaryBwd4<int(cpu::UnaryOp::name)>(x, y, dy, alpha);
    TTT_FUSED_UNARY_CASES(TTT_CASE)
#undef TTT_CASE
  default:
    return unaryBwd4<int(cpu::UnaryOp::add_scalar)>(x, y, dy, alpha);
  }
}
#undef TTT_FUSED_UNARY_CASES

// Issues the copies of group g's inputs into input buffer `buffer` of this thread's file slots
// (nothing past the last group). Lanes past the end of the result are zeroed.
template <typename Index>
__device__ void fusedPrefetch(const FusedIn<Index> *ins, int nIn, int nSteps, const Dims &out,
                              const Index (&dim)[kMaxRank], bool broadcast, Index total,
                              Index groups, Index g, int buffer, float4 *file) {
  if (g >= groups)
    return;
  const int T = int(blockDim.x), t = int(threadIdx.x);
  const Index i0 = g * 4;
  const int valid = total - i0 >= 4 ? 4 : int(total - i0);
  Index coord[kMaxRank] = {};
  if (broadcast) { // the coordinates of the group's first element
    Index rem = i0;
#pragma unroll
    for (int r = kMaxRank - 1; r >= 0; --r) {
      if (r >= out.rank)
        continue;
      coord[r] = r == 0 ? rem : rem % dim[r];
      rem /= dim[r];
    }
  }
  for (int k = 0; k < nIn; ++k) {
    const int mode = ins[k].mode;
    if (mode == kFusedScalar)
      continue;
    const float *data = ins[k].data;
    float4 *dst = file + fusedFileSlot(k, buffer, nIn, nSteps) * T + t;
    float *lanes = reinterpret_cast<float *>(dst);
    if (mode == kFusedFull && valid == 4) {
      fusedCopy16(dst, data + i0);
    } else if (mode <= kFusedFullUnaligned) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (e < valid)
          fusedCopy4(lanes + e, data + i0 + e);
        else
          lanes[e] = 0.f;
      }
    } else { // broadcast: step the coordinates element by element
      Index c[kMaxRank], stride[kMaxRank];
#pragma unroll
      for (int r = 0; r < kMaxRank; ++r) {
        c[r] = coord[r];
        stride[r] = ins[k].stride[r];
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (e >= valid) {
          lanes[e] = 0.f;
          continue;
        }
        Index off = 0;
#pragma unroll
        for (int r = 0; r < kMaxRank; ++r)
          off += c[r] * stride[r];
        fusedCopy4(lanes + e, data + off);
#pragma unroll
        for (int r = kMaxRank - 1; r >= 0; --r) {
          if (r >= out.rank)
            continue;
          if (++c[r] < dim[r])
            break;
          c[r] = 0;
        }
      }
    }
  }
}

// Index: uint32_t when total < 2^31 (offsets and coordinates fit), else uint64_t.
template <typename Index, typename Out>
__global__ void __launch_bounds__(256, 4)
    fusedKernel(const FusedInput *inputs, const FusedStepDesc *steps, int nIn, int nSteps, Dims out,
                Index total, Out *y) {
  extern __shared__ __align__(16) unsigned char fusedShared[];
  auto *ops = reinterpret_cast<FusedOp *>(fusedShared);
  auto *ins = reinterpret_cast<FusedIn<Index> *>(fusedShared + fusedInsOffset(nSteps));
  float4 *file = reinterpret_cast<float4 *>(fusedShared + fusedFileOffset<Index>(nIn, nSteps));
  const int T = int(blockDim.x), t = int(threadIdx.x);

  for (int x = t; x < kFusedStages * nSteps; x += T) {
    const int buffer = x / nSteps;
    const FusedStepDesc &s = steps[x - buffer * nSteps];
    FusedOp o;
    o.kind = s.kind;
    o.op = s.op;
    o.a = fusedFileSlot(s.args[0], buffer, nIn, nSteps) * T;
    o.b = s.args[1] < 0 ? 0 : fusedFileSlot(s.args[1], buffer, nIn, nSteps) * T;
    o.c = s.args[2] < 0 ? 0 : fusedFileSlot(s.args[2], buffer, nIn, nSteps) * T;
    o.alpha = s.alpha;
    ops[x] = o;
  }
  int broadcast = 0;
  for (int k = t; k < nIn; k += T) {
    const FusedInput &s = inputs[k];
    FusedIn<Index> d;
    d.data = s.data;
    bool repeats = true;
#pragma unroll
    for (int r = 0; r < kMaxRank; ++r) {
      d.stride[r] = r < out.rank ? Index(s.stride[r]) : Index(0);
      repeats = repeats && d.stride[r] == 0;
    }
    if (s.full)
      d.mode = (reinterpret_cast<uintptr_t>(s.data) & 15) == 0 ? kFusedFull : kFusedFullUnaligned;
    else
      d.mode = repeats ? kFusedScalar : kFusedBroadcast;
    broadcast |= d.mode == kFusedBroadcast;
    ins[k] = d;
  }
  broadcast = __syncthreads_or(broadcast);
  // From here on each thread touches only its own file slots: no more barriers.

  for (int k = 0; k < nIn; ++k)
    if (ins[k].mode == kFusedScalar) {
      const float v = ins[k].data[0];
#pragma unroll
      for (int b = 0; b < kFusedStages; ++b)
        file[fusedFileSlot(k, b, nIn, nSteps) * T + t] = make_float4(v, v, v, v);
    }

  Index dim[kMaxRank];
#pragma unroll
  for (int r = 0; r < kMaxRank; ++r)
    dim[r] = r < out.rank ? Index(out.d[r]) : Index(1);
  const bool yAligned = (reinterpret_cast<uintptr_t>(y) & 15) == 0;
  const Index groups = (total + 3) / 4, stride = Index(gridDim.x) * Index(T);
  Index g = Index(blockIdx.x) * Index(T) + Index(t);
#pragma unroll
  for (int b = 0; b + 1 < kFusedStages; ++b) {
    fusedPrefetch(ins, nIn, nSteps, out, dim, broadcast != 0, total, groups, g + Index(b) * stride,
                  b, file);
    fusedCommit();
  }
  for (int buffer = 0; g < groups; g += stride) {
    const int ahead = (buffer + kFusedStages - 1) % kFusedStages;
    fusedPrefetch(ins, nIn, nSteps, out, dim, broadcast != 0, total, groups,
                  g + Index(kFusedStages - 1) * stride, ahead, file);
    fusedCommit();
    fusedWait<kFusedStages - 1>(); // this group's copies have landed

    const FusedOp *program = ops + buffer * nSteps;
    float4 res = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int j = 0; j < nSteps; ++j) {
      const FusedOp &s = program[j];
      const float4 a = file[s.a + t];
      if (s.kind == 0)
        res = fusedBinary(s.op, a, file[s.b + t]);
      else if (s.kind == 1)
        res = fusedUnary(s.op, a, s.alpha);
      else
        res = fusedUnaryBwd(s.op, a, file[s.b + t], file[s.c + t], s.alpha);
      if (j + 1 < nSteps)
        file[(nIn + j) * T + t] = res;
    }

    const Index i0 = g * 4;
    if (total - i0 >= 4 && yAligned) {
      put4(y, int64_t(g), res);
    } else {
      const int valid = total - i0 >= 4 ? 4 : int(total - i0);
      put(y, int64_t(i0), res.x);
      if (valid > 1)
        put(y, int64_t(i0) + 1, res.y);
      if (valid > 2)
        put(y, int64_t(i0) + 2, res.z);
      if (valid > 3)
        put(y, int64_t(i0) + 3, res.w);
    }
    buffer = buffer + 1 == kFusedStages ? 0 : buffer + 1;
  }
  fusedWait<0>();
}

// --- lm_head + cross-entropy row updates --------------------------------------------------------
__global__ void xentStartKernel(int64_t n, double *runMax, double *runSum) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    runMax[i] = -INFINITY;
    runSum[i] = 0.0;
  }
}

// Fast: exp in fp32 (bf16 plans; spec 3.4 keeps the softmax in fp32), summed in double; else in
// double as the CPU computes it. The double exp made this kernel compute-bound.
template <bool Fast>
__global__ void xentChunkKernel(const float *logits, const int32_t *targets, int64_t cols,
                                int64_t v0, int64_t ignoreToken, double *runMax, double *runSum,
                                double *picked) {
  __shared__ double sumShared[kRowThreads];
  __shared__ float maxShared[kRowThreads];
  const int64_t i = blockIdx.x;
  const int32_t t = targets[i];
  if (t == ignoreToken)
    return;
  const float *row = logits + i * cols;
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    m = (row[c] >= m || isnan(row[c])) ? row[c] : m;
  const double chunkMax = double(blockMax(m, maxShared));
  double mx = runMax[i], sum = runSum[i];
  if (chunkMax > mx) {
    sum *= exp(mx - chunkMax);
    mx = chunkMax;
  }
  double s = 0.0;
  const float mxf = float(mx); // a logit (or -inf), exactly
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    s += Fast ? double(expf(row[c] - mxf)) : exp(double(row[c]) - mx);
  const double chunkSum = blockSum(s, sumShared);
  if (threadIdx.x == 0) {
    runMax[i] = mx;
    runSum[i] = sum + chunkSum;
    if (t >= v0 && t < v0 + cols)
      picked[i] = double(row[t - v0]);
  }
}

__global__ void xentFinishKernel(const int32_t *targets, int64_t n, int64_t ignoreToken,
                                 const double *runMax, const double *runSum,
                                 const double *picked, float *loss, float *mask, float *lse) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  if (targets[i] == ignoreToken) {
    loss[i] = mask[i] = lse[i] = 0.0f;
    return;
  }
  const double l = runMax[i] + log(runSum[i]);
  loss[i] = float(l - picked[i]);
  mask[i] = 1.0f;
  lse[i] = float(l);
}

// One block per row (the row's target, lse and dloss read once), the columns by the block's
// threads. With `g16` the result goes there as bf16 (the operand of the two gradient matmuls)
// and the fp32 chunk is left as it was: no separate cast pass over the chunk.
template <bool Fast>
__global__ void xentBackwardChunkKernel(float *g, const int32_t *targets, const float *lse,
                                        const float *dloss, int64_t cols, int64_t v0,
                                        int64_t ignoreToken, __nv_bfloat16 *g16) {
  const int64_t i = blockIdx.x;
  float *row = g + i * cols;
  __nv_bfloat16 *row16 = g16 ? g16 + i * cols : nullptr;
  const int32_t t = targets[i];
  const bool ignored = t == ignoreToken;
  const double d = ignored ? 0.0 : double(dloss[i]), l = ignored ? 0.0 : double(lse[i]);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = 0.0f;
    if (!ignored && Fast) {
      v = float(d) * expf(row[c] - float(l));
      if (t == v0 + c)
        v -= float(d);
    } else if (!ignored) {
      v = float(d * exp(double(row[c]) - l));
      if (t == v0 + c)
        v = float(double(v) - d);
    }
    if (row16)
      row16[c] = __float2bfloat16_rn(v);
    else
      row[c] = v;
  }
}
} // namespace

// --- launchers ----------------------------------------------------------------------------------
#define TTT_LAUNCH(kernel, n, ...)                                                                 \
  do {                                                                                             \
    if ((n) > 0)                                                                                   \
      kernel<<<blocksFor(n), kThreads>>>(__VA_ARGS__);                                             \
  } while (0)

void embedding(const int32_t *tokens, int64_t n, const float *table, int64_t dim, float *y) {
  TTT_LAUNCH(embeddingKernel, n * dim, tokens, n, table, dim, y);
}
void rmsNorm(const float *x, const float *w, int64_t rows, int64_t dim, double eps, float *y) {
  if (rows > 0)
    rmsNormRowsKernel<<<warpRowBlocks(rows), kThreads>>>(x, w, rows, dim, eps, y);
}
void rmsNormBf16(const float *x, const float *w, int64_t rows, int64_t dim, double eps, void *y) {
  if (rows > 0)
    rmsNormRowsKernel<<<warpRowBlocks(rows), kThreads>>>(x, w, rows, dim, eps,
                                                         static_cast<__nv_bfloat16 *>(y));
}
void layerNorm(const float *x, const float *w, const float *b, int64_t rows, int64_t dim,
               double eps, float *y) {
  if (rows > 0)
    layerNormRowsKernel<<<warpRowBlocks(rows), kThreads>>>(x, w, b, rows, dim, eps, y);
}
void causalConv(const float *x, const float *kernel, const float *bias, int64_t batch,
                int64_t seq, int64_t dim, int64_t width, float *y, const float *history) {
  if (width < 1)
    throw std::invalid_argument("causal_conv: width must be >= 1");
  const int64_t convTiles = (seq + kConvSteps - 1) / kConvSteps;
  if (width == 4 && batch > 0 && seq > 0 && dim > 0 && batch * seq * dim < (int64_t(1) << 31) &&
      batch * convTiles * dim < (int64_t(1) << 31)) {
    const int64_t threads = batch * convTiles * dim;
    causalConv4Kernel<<<blocksFor(threads), kThreads>>>(x, kernel, bias, int32_t(batch),
                                                         int32_t(seq), int32_t(dim),
                                                         int32_t(convTiles), y, history);
  } else if (batch * seq * dim < (int64_t(1) << 31))
    TTT_LAUNCH(causalConvKernel<int32_t>, batch * seq * dim, x, kernel, bias, batch, seq, dim,
               width, y, history);
  else
    TTT_LAUNCH(causalConvKernel<int64_t>, batch * seq * dim, x, kernel, bias, batch, seq, dim,
               width, y, history);
}
void rope(const float *x, int64_t batch, int64_t seq, int64_t heads, int64_t headDim,
          int64_t period, double theta, double direction, float *y) {
  if (headDim % 2 != 0 || period < 1)
    throw std::invalid_argument("rope: odd head dimension or period < 1");
  const int64_t total = batch * seq * heads * (headDim / 2);
  if (period * (headDim / 2) <= kRopeTable && seq < (int64_t(1) << 31)) {
    if (total > 0)
      ropeTableKernel<<<int(std::min<int64_t>(blocksFor(total), 2048)), kThreads>>>(
          x, total, int32_t(heads), int32_t(headDim), int32_t(seq), int32_t(period), theta,
          direction, y);
    return;
  }
  TTT_LAUNCH(ropeKernel, total, x, batch, seq, heads, headDim, period, theta, direction, y);
}
namespace {
template <typename Out>
void binaryTo(cpu::BinaryOp op, const float *a, const Shape &shapeA, const float *b,
              const Shape &shapeB, const Shape &outShape, Out *out) {
  const Dims o = dimsOf(outShape);
  const int64_t total = cpu::numElements(outShape);
  if (cpu::numElements(shapeA) == total && cpu::numElements(shapeB) == total) {
    const int64_t quads = aligned16({a, b, out}) ? total / 4 : 0;
    TTT_LAUNCH(binaryFlatKernel<Out>, total - 3 * quads, int(op), a, b, quads, total, out);
  }
  else if (total < (int64_t(1) << 31))
    TTT_LAUNCH((binaryKernel<int32_t, Out>), total, int(op), a, broadcastStrides(shapeA, o.rank),
               b, broadcastStrides(shapeB, o.rank), o, total, out);
  else
    TTT_LAUNCH((binaryKernel<int64_t, Out>), total, int(op), a, broadcastStrides(shapeA, o.rank),
               b, broadcastStrides(shapeB, o.rank), o, total, out);
}
} // namespace
void binary(cpu::BinaryOp op, const float *a, const Shape &shapeA, const float *b,
            const Shape &shapeB, const Shape &outShape, float *out) {
  binaryTo(op, a, shapeA, b, shapeB, outShape, out);
}
void binaryBf16(cpu::BinaryOp op, const float *a, const Shape &shapeA, const float *b,
                const Shape &shapeB, const Shape &outShape, void *out) {
  binaryTo(op, a, shapeA, b, shapeB, outShape, static_cast<__nv_bfloat16 *>(out));
}
void unary(cpu::UnaryOp op, const float *x, int64_t n, double alpha, float *y) {
  const int64_t quads = aligned16({x, y}) ? n / 4 : 0;
  TTT_LAUNCH(unaryKernel, n - 3 * quads, int(op), x, quads, n, alpha, y);
}
void unaryBackward(cpu::UnaryOp op, const float *x, const float *y, const float *dy, int64_t n,
                   double alpha, float *dx) {
  const int64_t quads = aligned16({x, y, dy, dx}) ? n / 4 : 0;
  TTT_LAUNCH(unaryBackwardKernel, n - 3 * quads, int(op), x, y, dy, quads, n, alpha, dx);
}
void reduceLast(cpu::ReduceOp op, const float *x, int64_t rows, int64_t cols, float *y) {
  TTT_LAUNCH(reduceKernel, rows, int(op), x, rows, cols, y);
}
void transpose(const float *x, const Shape &shape, const std::vector<int> &perm, float *y) {
  const int rank = int(shape.size());
  if (rank > kMaxRank)
    throw std::invalid_argument("cuda: rank " + std::to_string(rank) + " is above the supported 6");
  if (perm.size() != shape.size())
    throw std::invalid_argument("transpose: permutation of the wrong size");
  bool seen[kMaxRank] = {};
  for (int p : perm) {
    if (p < 0 || p >= rank || seen[p])
      throw std::invalid_argument("transpose: not a permutation");
    seen[p] = true;
  }
  const int64_t total = cpu::numElements(shape);
  if (total <= 0)
    return;
  // Collapse: drop size-1 dims, then merge runs of input dims that stay adjacent in the output.
  int newIndex[kMaxRank], kept = 0;
  for (int d = 0; d < rank; ++d)
    newIndex[d] = shape[d] == 1 ? -1 : kept++;
  int seq[kMaxRank], n = 0; // kept input dims, in output order
  for (int d = 0; d < rank; ++d)
    if (newIndex[perm[d]] >= 0)
      seq[n++] = newIndex[perm[d]];
  int64_t keptSize[kMaxRank];
  for (int d = 0; d < rank; ++d)
    if (newIndex[d] >= 0)
      keptSize[newIndex[d]] = shape[d];
  int groupFirst[kMaxRank], groups = 0; // groups in output order: first kept input dim
  int64_t groupSize[kMaxRank];
  for (int i = 0; i < n; ++i) {
    if (i > 0 && seq[i] == seq[i - 1] + 1) {
      groupSize[groups - 1] *= keptSize[seq[i]];
    } else {
      groupFirst[groups] = seq[i];
      groupSize[groups++] = keptSize[seq[i]];
    }
  }
  // Collapsed input dim of each group: its rank by first kept input dim.
  int cPerm[kMaxRank];      // output dim -> collapsed input dim
  int64_t cIn[kMaxRank];    // collapsed input extents
  for (int g = 0; g < groups; ++g) {
    int pos = 0;
    for (int h = 0; h < groups; ++h)
      pos += groupFirst[h] < groupFirst[g];
    cPerm[g] = pos;
    cIn[pos] = groupSize[g];
  }
  int64_t inStride[kMaxRank], stride = 1;
  for (int d = groups - 1; d >= 0; --d) {
    inStride[d] = stride;
    stride *= cIn[d];
  }
  Dims out;
  out.rank = groups;
  Strides src;
  for (int d = 0; d < groups; ++d) {
    out.d[d] = cIn[cPerm[d]];
    src.s[d] = inStride[cPerm[d]];
  }
  const bool small = total < (int64_t(1) << 31);
  // Walk over the output dims [0, dims), strides divided by `unit`.
  auto walk = [&](int dims, int64_t unit) {
    Walk32 w;
    w.rank = dims;
    for (int d = 0; d < dims; ++d) {
      w.d[d] = uint32_t(out.d[d]);
      w.s[d] = uint32_t(src.s[d] / unit);
    }
    return w;
  };
  const int64_t row = groups > 0 ? out.d[groups - 1] : 1;
  if (small && groups >= 2 && cPerm[groups - 1] == groups - 1 && row % 4 == 0 &&
      reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0) {
    const uint32_t rows = uint32_t(total / row), row4 = uint32_t(row / 4);
    const Walk32 w = walk(groups - 1, 4);
    const auto *x4 = reinterpret_cast<const float4 *>(x);
    auto *y4 = reinterpret_cast<float4 *>(y);
    auto launch = [&](auto kernel, int lanes) {
      const uint32_t perBlock = uint32_t(kThreads / lanes * kRowsPerThread);
      kernel<<<(rows + perBlock - 1) / perBlock, kThreads>>>(x4, w, rows, row4, y4);
    };
    if (row4 <= 1)
      launch(transposeRowsKernel<1>, 1);
    else if (row4 <= 2)
      launch(transposeRowsKernel<2>, 2);
    else if (row4 <= 4)
      launch(transposeRowsKernel<4>, 4);
    else if (row4 <= 8)
      launch(transposeRowsKernel<8>, 8);
    else if (row4 <= 16)
      launch(transposeRowsKernel<16>, 16);
    else
      launch(transposeRowsKernel<32>, 32);
    return;
  }
  if (small && groups >= 2 && cPerm[groups - 1] == groups - 2 &&
      cPerm[groups - 2] == groups - 1 && out.d[groups - 1] * out.d[groups - 2] <= kMatFloats / 2) {
    const uint32_t R = uint32_t(out.d[groups - 1]), C = uint32_t(out.d[groups - 2]);
    const uint32_t M = R * C, mats = uint32_t(total / M);
    const uint32_t perBlock = std::min(kMatMax, kMatFloats / M);
    transposeMatsKernel<<<(mats + perBlock - 1) / perBlock, kThreads>>>(x, walk(groups - 2, 1), mats,
                                                                          R, C, perBlock, y);
    return;
  }
  if (small)
    TTT_LAUNCH(transposeKernel<int32_t>, total, x, out, src, total, y);
  else
    TTT_LAUNCH(transposeKernel<int64_t>, total, x, out, src, total, y);
}
void slice(const float *x, int64_t outer, int64_t extent, int64_t inner, int64_t start,
           int64_t size, float *y) {
  TTT_LAUNCH(sliceKernel, outer * size * inner, x, outer, extent, inner, start, size, y);
}
void insert(const float *src, int64_t outer, int64_t extent, int64_t inner, int64_t start,
            int64_t size, float *dst) {
  TTT_LAUNCH(insertKernel, outer * size * inner, src, outer, extent, inner, start, size, dst);
}
void tril(const float *x, int64_t matrices, int64_t n, float *y) {
  TTT_LAUNCH(trilKernel, matrices * n * n, x, matrices * n * n, n, y);
}
void fill(float *y, int64_t n, double value) { TTT_LAUNCH(fillKernel, n, y, n, float(value)); }
void iota(float *y, int64_t n, double start) { TTT_LAUNCH(iotaKernel, n, y, n, start); }
void softmaxXent(const float *logits, const int32_t *targets, int64_t n, int64_t vocab,
                 int64_t ignoreToken, float *loss, float *mask) {
  if (n > 0)
    softmaxXentKernel<<<int(n), kRowThreads>>>(logits, targets, vocab, ignoreToken, loss, mask);
}
void maskedMean(const float *loss, const float *mask, int64_t batch, int64_t seq, float *out) {
  maskedMeanKernel<<<1, kRowThreads>>>(loss, mask, batch, seq, out);
}

void embeddingBackward(const int64_t *offsets, const int64_t *positions, const float *dy,
                       int64_t vocab, int64_t dim, float *dtable) {
  TTT_LAUNCH(embeddingBackwardKernel, vocab * dim, offsets, positions, dy, vocab, dim, dtable);
}
namespace {
template <int CPL>
void rmsNormBackwardFusedLaunch(const float *x, const float *w, const float *dy, int64_t rows,
                                int64_t dim, double eps, float *dx, float *dw) {
  constexpr int warps = kThreads / 32;
  const int64_t blocks = (rows + warps * kRmsRowsPerWarp - 1) / (warps * kRmsRowsPerWarp);
  double *partials = columnScratch(size_t(blocks * dim));
  const size_t shared = size_t(warps * dim) * sizeof(double);
  if (shared > 48 * 1024) { // above the default: opt in, once (not a stream operation)
    static const cudaError_t optIn =
        cudaFuncSetAttribute(rmsNormBackwardFused<CPL>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             int(warps * 32 * CPL * sizeof(double)));
    (void)optIn;
  }
  rmsNormBackwardFused<CPL><<<int(blocks), kThreads, shared>>>(x, w, dy, rows, dim, eps, dx,
                                                               partials);
  columnFinishKernel<1><<<int((dim + 255) / 256), 256>>>(partials, blocks, dim,
                                                         ColumnOutputs<1>{{dw}});
}
} // namespace
void rmsNormBackward(const float *x, const float *w, const float *dy, int64_t rows, int64_t dim,
                     double eps, float *dx, float *dw, double *rowScratch) {
  // One pass up to 1024 columns (125M and 350M; the partials take 24 or 32 double registers per
  // lane); wider rows keep the two kernels.
  if (rows > 0 && dim > 0 && dim <= 768) {
    rmsNormBackwardFusedLaunch<24>(x, w, dy, rows, dim, eps, dx, dw);
    return;
  }
  if (rows > 0 && dim > 768 && dim <= 1024) {
    rmsNormBackwardFusedLaunch<32>(x, w, dy, rows, dim, eps, dx, dw);
    return;
  }
  if (rows > 0)
    rmsNormBackwardRowsWarp<<<warpRowBlocks(rows), kThreads>>>(x, w, dy, rows, dim, eps, dx,
                                                                rowScratch);
  columnSums<1>(RmsWeightGrad{x, dy, rowScratch, dim}, rows, dim, ColumnOutputs<1>{{dw}});
}
void layerNormBackward(const float *x, const float *w, const float *dy, int64_t rows,
                       int64_t dim, double eps, float *dx, float *dw, float *db,
                       double *rowScratch) {
  if (rows > 0)
    layerNormBackwardRowsWarp<<<warpRowBlocks(rows), kThreads>>>(x, w, dy, rows, dim, eps, dx,
                                                                  rowScratch);
  columnSums<2>(LayerNormParamGrads{x, dy, rowScratch, dim}, rows, dim,
                ColumnOutputs<2>{{dw, db}});
}
void causalConvBackward(const float *x, const float *kernel, const float *dy, int64_t batch,
                        int64_t seq, int64_t dim, int64_t width, float *dx, float *dkernel,
                        float *dbias, const float *history) {
  if (width < 1)
    throw std::invalid_argument("causal_conv_backward: width must be >= 1");
  const int64_t convRows = batch * seq;
  if (width == 4 && convRows > 0 && dim > 0 && convRows * dim < (int64_t(1) << 31) &&
      (convRows + kChunkRows - 1) / kChunkRows <= 65535) {
    // One pass for dx and the ConvParamGrads<4> partials, then columnSums' finishing pass.
    const int64_t chunks = (convRows + kChunkRows - 1) / kChunkRows;
    double *partials = columnScratch(size_t(chunks * 5 * dim));
    const dim3 grid(unsigned((dim + kColTile - 1) / kColTile), unsigned(chunks));
    causalConv4BackwardKernel<<<grid, dim3(kColTile, kRowLanes)>>>(
        x, kernel, dy, int32_t(convRows), int32_t(seq), int32_t(dim), dx, partials, history);
    columnFinishKernel<5><<<int((5 * dim + 255) / 256), 256>>>(
        partials, chunks, dim,
        ColumnOutputs<5>{{dkernel, dkernel + dim, dkernel + 2 * dim, dkernel + 3 * dim, dbias}});
    return;
  }
  if (batch * seq * dim < (int64_t(1) << 31))
    TTT_LAUNCH(causalConvBackwardInput<int32_t>, batch * seq * dim, kernel, dy, batch, seq, dim,
               width, dx);
  else
    TTT_LAUNCH(causalConvBackwardInput<int64_t>, batch * seq * dim, kernel, dy, batch, seq, dim,
               width, dx);
  if (width == 4) // the model's kernel: the column-sum path
    columnSums<5>(ConvParamGrads<4>{x, dy, seq, dim, history}, batch * seq, dim,
                  ColumnOutputs<5>{{dkernel, dkernel + dim, dkernel + 2 * dim, dkernel + 3 * dim,
                                    dbias}});
  else
    TTT_LAUNCH(causalConvBackwardParams, (width + 1) * dim, x, dy, batch, seq, dim, width,
               dkernel, dbias, history);
}
void sumTo(const float *x, const Shape &from, const Shape &to, float *y) {
  const int rank = int(from.size());
  if (to.size() > from.size() || rank > kMaxRank)
    throw std::invalid_argument("sum_to: bad shapes");
  Dims f = dimsOf(from), kept, reduced;
  Strides xStride, keptStrides, reducedStrides;
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    xStride.s[d] = stride;
    stride *= from[d];
  }
  // Dim d of x is kept if `to` has it with the same extent (> 1); else summed.
  const int offset = rank - int(to.size());
  for (int d = 0; d < rank; ++d) {
    const bool keep = d >= offset && to[d - offset] != 1;
    if (keep) {
      if (to[d - offset] != from[d])
        throw std::invalid_argument("sum_to: the target does not broadcast to the source");
      kept.d[kept.rank] = from[d];
      keptStrides.s[kept.rank++] = xStride.s[d];
    } else {
      reduced.d[reduced.rank] = from[d];
      reducedStrides.s[reduced.rank++] = xStride.s[d];
    }
  }
  const int64_t outTotal = cpu::numElements(to);
  int64_t reducedTotal = 1;
  for (int d = 0; d < reduced.rank; ++d)
    reducedTotal *= reduced.d[d];
  // Summed dims all before the kept ones (unit dims aside): x is [reduced, kept], column sums.
  bool leading = true, seenKept = false;
  for (int d = 0; d < rank; ++d) {
    const bool keep = d >= offset && to[d - offset] != 1;
    if (keep)
      seenKept = true;
    else if (seenKept && from[d] != 1)
      leading = false;
  }
  if (leading) {
    columnSums<1>(PlainColumns{x, outTotal}, reducedTotal, outTotal, ColumnOutputs<1>{{y}});
    return;
  }
  TTT_LAUNCH(sumToKernel, outTotal, x, f, xStride, kept, outTotal, reduced, reducedStrides,
             reducedTotal, keptStrides, y);
}
void softmaxXentBackward(const float *logits, const int32_t *targets, const float *dloss,
                         int64_t n, int64_t vocab, int64_t ignoreToken, float *dlogits) {
  if (n > 0)
    softmaxXentBackwardKernel<<<int(n), kRowThreads>>>(logits, targets, dloss, vocab, ignoreToken,
                                                       dlogits);
}
void maskedMeanBackward(const float *mask, const float *dout, int64_t batch, int64_t seq,
                        float *dloss) {
  TTT_LAUNCH(maskedMeanBackwardKernel, batch, mask, dout, batch, seq, dloss);
}
void accumulate(float *acc, const float *g, int64_t n, float scale) {
  TTT_LAUNCH(accumulateKernel, n, acc, g, n, scale);
}

template <typename Index, typename Out>
void launchFused(const FusedInput *in, const FusedStepDesc *st, int nIn, int nSteps, const Dims &o,
                 int64_t total, Out *out) {
  // The descriptors and the slot file stay within the default 48 KiB of shared memory: 256
  // threads for up to 11 file slots, fewer (a multiple of 32 while that fits) for longer programs.
  constexpr size_t kSharedLimit = 48 * 1024;
  const size_t fixed = fusedFileOffset<Index>(nIn, nSteps);
  const size_t perThread = size_t(fusedFileSlots(nIn, nSteps)) * sizeof(float4);
  size_t fit = std::min<size_t>(kThreads, (kSharedLimit - fixed) / perThread);
  if (fit >= 32)
    fit = fit / 32 * 32;
  const int threads = int(fit);
  const size_t shared = fixed + perThread * size_t(threads);
  const int64_t groups = (total + 3) / 4;
  const int64_t blocks = (groups + threads - 1) / threads;
  // Grid-stride: at most one wave of resident blocks (queries only, no synchronization).
  int64_t grid = std::min<int64_t>(blocks, int64_t(1) << 20);
  int dev = 0, sms = 0, perSm = 0;
  if (cudaGetDevice(&dev) == cudaSuccess &&
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess &&
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, fusedKernel<Index, Out>, threads, shared) ==
          cudaSuccess &&
      sms > 0 && perSm > 0)
    grid = std::min<int64_t>(blocks, int64_t(sms) * perSm);
  fusedKernel<Index, Out><<<int(grid), threads, shared>>>(in, st, nIn, nSteps, o, Index(total),
                                                          out);
}

std::vector<char> fusedDescriptor(const std::vector<const float *> &data,
                                  const std::vector<Shape> &shapes,
                                  const std::vector<cpu::FusedStep> &steps, const Shape &outShape) {
  const int64_t total = cpu::numElements(outShape);
  const size_t rank = outShape.size();
  std::vector<FusedInput> inputs(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    const Shape &s = shapes[i];
    FusedInput &d = inputs[i];
    d.data = data[i];
    d.full = cpu::numElements(s) == total;
    if (d.full)
      continue;
    if (s.size() > rank)
      throw std::invalid_argument("fused_elementwise: an input does not broadcast to the result");
    int64_t stride = 1;
    for (size_t k = 0; k < s.size(); ++k) {
      const int64_t dim = s[s.size() - 1 - k], o = outShape[rank - 1 - k];
      if (dim != 1 && dim != o)
        throw std::invalid_argument("fused_elementwise: an input does not broadcast to the result");
      d.stride[rank - 1 - k] = dim == 1 ? 0 : stride;
      stride *= dim;
    }
  }
  std::vector<FusedStepDesc> descs(steps.size());
  for (size_t j = 0; j < steps.size(); ++j) {
    const cpu::FusedStep &s = steps[j];
    FusedStepDesc &d = descs[j];
    d.kind = s.kind == cpu::FusedStep::Kind::binary  ? 0
             : s.kind == cpu::FusedStep::Kind::unary ? 1
                                                     : 2;
    d.op = s.kind == cpu::FusedStep::Kind::binary ? int(s.binary) : int(s.unary);
    for (int a = 0; a < 3; ++a)
      d.args[a] = int32_t(s.args[a]);
    d.alpha = s.alpha;
  }
  const size_t inBytes = inputs.size() * sizeof(FusedInput);
  std::vector<char> blob(inBytes + descs.size() * sizeof(FusedStepDesc));
  std::memcpy(blob.data(), inputs.data(), inBytes);
  std::memcpy(blob.data() + inBytes, descs.data(), blob.size() - inBytes);
  return blob;
}

namespace {
template <typename Out>
void fusedElementwiseTo(const void *desc, int inputs, int steps, const Shape &outShape, Out *out) {
  if (inputs + steps > kMaxFusedSlots)
    throw std::invalid_argument("fused_elementwise: more than 64 inputs and steps");
  const Dims o = dimsOf(outShape);
  const int64_t total = cpu::numElements(outShape);
  if (steps <= 0)
    throw std::invalid_argument("fused_elementwise: no steps");
  if (total <= 0)
    return;
  const auto *in = static_cast<const FusedInput *>(desc);
  const auto *st = reinterpret_cast<const FusedStepDesc *>(in + inputs);
  if (total < (int64_t(1) << 31))
    launchFused<uint32_t>(in, st, inputs, steps, o, total, out);
  else
    launchFused<uint64_t>(in, st, inputs, steps, o, total, out);
}
} // namespace
void fusedElementwise(const void *desc, int inputs, int steps, const Shape &outShape, float *out) {
  fusedElementwiseTo(desc, inputs, steps, outShape, out);
}
void fusedElementwiseBf16(const void *desc, int inputs, int steps, const Shape &outShape,
                          void *out) {
  fusedElementwiseTo(desc, inputs, steps, outShape, static_cast<__nv_bfloat16 *>(out));
}

void xentStart(int64_t n, double *runMax, double *runSum) {
  TTT_LAUNCH(xentStartKernel, n, n, runMax, runSum);
}
void xentChunk(const float *logits, const int32_t *targets, int64_t n, int64_t cols, int64_t v0,
               int64_t ignoreToken, double *runMax, double *runSum, double *picked,
               bool fastExp) {
  if (n > 0 && fastExp)
    xentChunkKernel<true><<<int(n), kRowThreads>>>(logits, targets, cols, v0, ignoreToken, runMax,
                                                   runSum, picked);
  else if (n > 0)
    xentChunkKernel<false><<<int(n), kRowThreads>>>(logits, targets, cols, v0, ignoreToken, runMax,
                                                    runSum, picked);
}
void xentFinish(const int32_t *targets, int64_t n, int64_t ignoreToken, const double *runMax,
                const double *runSum, const double *picked, float *loss, float *mask,
                float *lse) {
  TTT_LAUNCH(xentFinishKernel, n, targets, n, ignoreToken, runMax, runSum, picked, loss, mask,
             lse);
}
void xentBackwardChunk(float *g, const int32_t *targets, const float *lse, const float *dloss,
                       int64_t n, int64_t cols, int64_t v0, int64_t ignoreToken, void *gBf16,
                       bool fastExp) {
  if (n <= 0 || cols <= 0)
    return;
  auto *g16 = static_cast<__nv_bfloat16 *>(gBf16);
  if (fastExp)
    xentBackwardChunkKernel<true><<<int(n), kRowThreads>>>(g, targets, lse, dloss, cols, v0,
                                                           ignoreToken, g16);
  else
    xentBackwardChunkKernel<false><<<int(n), kRowThreads>>>(g, targets, lse, dloss, cols, v0,
                                                            ignoreToken, g16);
}
} // namespace ttt::cuda
