// The fused TTT-Linear inner loop on the GPU (Kernels.h: innerLoopForward, innerLoopBackward):
// the semantics of runtime/backend/cpu/InnerLoop.cpp (the reference; its backward is tested
// against central differences), computed in fp32 by one thread block per (batch, head).
// q, k, v, eta, o and their cotangents are read and written in either layout of InnerLoopShape
// (mini-batch major, or tokenMajor: token rows H f floats apart): the kernels are instantiated
// per layout (TM; token major addresses through the strides in Args), only addresses differ, so
// both layouts give the same bits.
//
// Block and thread layout (kThreads = 256 threads, kWarps = 8 warps):
//  - the block walks the mini-batch scan; the inner state W [f, f] and b [f] stays in shared
//    memory in fp32 for the whole scan (the backward also keeps dW, db there);
//  - every per-mini-batch tile [b, f] (K, Q, G, ...) is in shared memory, row stride LDX = FP + 4
//    floats (FP = 32 * CPL >= f, the head dim padded to whole warps; padding is zero and stays
//    zero), 16-byte aligned rows read as float4 and conflict free across rows;
//  - W-like matrices [FP, FP] have row stride LDW = FP + 1: a warp reading a row (lanes along e)
//    or a column (lanes along a) hits 32 different banks;
//  - "row owned" work: warp w owns the token rows w, w + 8, w + 16, ... of every [b, f] tile and
//    lane l the columns l, l + 32, ... (CPL of them). A thread keeps its rows x columns of a
//    result in registers, so LayerNorm statistics are warp reductions (xor butterfly: every lane
//    gets the same bits) and results that stay within a row (Z -> G, Zbar -> out, dZbar -> dQ)
//    never leave the warp;
//  - the small matmuls are FMA loops: rows x matrix products (X W, X W^T) per warp over its own
//    rows (rowsTimes), outer-product updates W -= K^T (eta G) in 4-row chunks of W per warp
//    (outerChunk), and q_i . k_j style dots with one thread per (i, j) entry;
//  - sums across rows (bias and db updates, dgamma/dlambda per column, deta/dtau per position)
//    run in a fixed order per thread; LayerNorm statistics and the scalar accumulators are in
//    double. No floating-point atomics: every result is the same bit for bit run to run.
//
// Forward (one kernel): per mini-batch m, the tiles of m + 1 are fetched with cp.async into the
// other of two buffers while m is computed. Phases of a step (forwardStep):
//   P1: [K; Q] W + b (rowsTimes) -> K rows: z, LayerNorm, G (closed-form gradient, spec 2.4),
//       eta-scaled G; Q rows kept in registers; A = Q K^T (lower triangle).   __syncthreads
//   P2: Zbar_i = q_i W + b - sum_{j<=i} tau_i eta_j (1 + A_ij) G_j, LayerNorm, out rows;
//       W -= K^T (tau_last eta G), b -= sum_j tau_last eta_j G_j.              __syncthreads
// The state at the start of every remat group is written to the checkpoints.
//
// Backward (one kernel + a small reduction kernel): per group, from the last one, the group's
// forward is recomputed from its checkpoint with the same forwardStep; each step's start state W_t
// and what its backward reads (G, zhat, r, xhat, 1/sigma of both LayerNorms, A) go to this
// block's slots in the workspace (they stay in L2). Then the steps in reverse (backwardStep),
// with dW, db carried in shared memory, three phases each:
//   B1: dZbar (LayerNorm backward of out), dQ = dO + dZbar W^T, dP = -(K dW' + db'),
//       dK = -tau_last eta (G dW'^T).                                          __syncthreads
//   B2: per (i, j): dC = -dZbar_i . G_j, dE, dA; per row j: dG = el dP - sum_i C_ij dZbar_i,
//       dEl = dP_j . G_j, the closed-form gradient's backward -> dZ, dV, dK += dr. __syncthreads
//   B3: dK += dZ W^T + dA^T Q, dQ += dA K; dW += Q^T dZbar + K^T dZ, db += column sums; deta,
//       and the partial sums of dtau, dtau_last.                             __syncthreads
// dgamma, dlambda, dtau, dtau_last are summed over the (batch, head) blocks: each block writes its
// partials (double) to the workspace and innerLoopSharedKernel adds them in (batch, head) order.
// When shared memory allows, the next (previous) step's tiles and W_t are prefetched during a
// step (two buffer sets, `nb` = 2); otherwise (large f with b = 32) one set is loaded per step.
//
// Limits: head dim f <= 128, mini-batch b <= 32 (kernels for CPL = ceil(f / 32) in 1..4 and
// MB = 16 or 32 rows); the launchers throw std::invalid_argument otherwise. No allocation, copy
// or synchronization in the launchers: they can be captured in a CUDA graph.
//
// Debugging a parity failure, output -> where it is computed: o, W_final, b_final, checkpoints:
// forwardStep (P1 for G, P2 for out and the state update). dq: B1 (dO + dZbar W^T) and B3 (dA K);
// dk: B1 (-el G dW'^T), B2 (dr), B3 (dZ W^T + dA^T Q); dv: B2; deta, dtau, dtau_last: B3 (from
// dE of B2 and dEl of B2); dW0, db0: B3 (carried over all steps); dgamma, dlambda: B1 (out's
// LayerNorm) and B2 (the gradient's LayerNorm). If only the backward fails, the cache slots (the
// recomputed forward) are the first thing to compare with the CPU's stepForward.
// Accuracy (H200, against the fp64 CPU reference): about 3e-7 relative by norm on every output,
// except the scalar dtau_last: a sum over all (batch, head, mini-batch, token) of terms of both
// signs, it loses the fp32 rounding of G and dP to cancellation (seen up to 8e-6 on a b = 32,
// f = 128 case; an fp64 CPU run with only G and dP rounded to fp32 shows the same order).
#include "runtime/backend/cuda/Kernels.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ttt::cuda {
namespace {
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxHeadDim = 128, kMaxMiniBatch = 32;

int roundUp4(int x) { return (x + 3) / 4 * 4; }

// Dynamic shared memory, in floats from its start. A buffer set holds one mini-batch's inputs and
// the forward results the other warps read.
struct Layout {
  int fp = 0, mb = 0, ldx = 0, ldw = 0, lda = 0;
  int nb = 1;             // buffer sets (and W buffers in the backward): 2 = prefetch
  int set[2] = {0, 0};    // K [mb, ldx], then Q [mb, ldx] (so [K; Q] is one 2 mb row tile),
  int setK = 0, setQ = 0; //   G [mb, ldx], A [mb, lda], eta [mb]: offsets within a set
  int setG = 0, setA = 0, setEta = 0;
  int W[2] = {0, 0};     // [fp, ldw]: the state (forward, recompute) or W_t (backward walk)
  int dW = -1;           // [fp, ldw] (backward)
  int bias = 0, db = -1; // [fp]
  int tau = 0;           // [mb]
  int EG = 0;            // [mb, ldx]: tau_last eta_j G_j (forward); dZ in the backward walk
  int dZbar = -1;        // [mb, ldx] (backward)
  int dA = -1, dE = -1;  // [mb, lda] (backward)
  int dEl = -1;          // [mb] (backward)
  int total = 0;         // floats
};

Layout makeLayout(int cpl, int mb, int nb, bool backward) {
  Layout L;
  L.fp = 32 * cpl;
  L.mb = mb;
  L.ldx = L.fp + 4;
  L.ldw = L.fp + 1;
  L.lda = mb + 1;
  L.nb = nb;
  const int tile = mb * L.ldx, mat = roundUp4(L.fp * L.ldw);
  L.setK = 0;
  L.setQ = tile;
  L.setG = 2 * tile;
  L.setA = 3 * tile;
  L.setEta = L.setA + roundUp4(mb * L.lda);
  const int setFloats = L.setEta + roundUp4(mb);
  int at = 0;
  auto take = [&](int floats) {
    const int r = at;
    at += roundUp4(floats);
    return r;
  };
  for (int s = 0; s < nb; ++s)
    L.set[s] = take(setFloats);
  for (int s = 0; s < (backward ? nb : 1); ++s)
    L.W[s] = take(mat);
  L.bias = take(L.fp);
  L.tau = take(mb);
  L.EG = take(tile);
  if (backward) {
    L.dW = take(mat);
    L.db = take(L.fp);
    L.dZbar = take(tile);
    L.dA = take(mb * L.lda);
    L.dE = take(mb * L.lda);
    L.dEl = take(mb);
  }
  L.total = at;
  return L;
}

// What a backward block keeps per step of its group in the workspace (floats, row-major with the
// true sizes): W_t [f, f] (steps 1 .. group-2; step 0 is the checkpoint, the last step's state is
// still in shared memory), G, zhat, r, xhat [b, f], A [b, b], 1/sigma of LN(z) and of LN(Zbar) [b].
struct Slot {
  int64_t W, G, zhat, r, xhat, A, rstd, rstdL, floats;
};
__host__ __device__ Slot slotOf(int b, int f) {
  Slot s;
  s.W = 0;
  s.G = s.W + int64_t(f) * f;
  s.zhat = s.G + int64_t(b) * f;
  s.r = s.zhat + int64_t(b) * f;
  s.xhat = s.r + int64_t(b) * f;
  s.A = s.xhat + int64_t(b) * f;
  s.rstd = s.A + int64_t(b) * b;
  s.rstdL = s.rstd + b;
  s.floats = (s.rstdL + b + 3) / 4 * 4;
  return s;
}
// Per block: dgamma [f], dlambda [f], dtau [b], dtau_last (doubles).
__host__ __device__ int64_t partialDoubles(int b, int f) { return 2 * int64_t(f) + b + 1; }

struct Args {
  // Shape.
  int n = 0, batch = 0, heads = 0, b = 0, f = 0, group = 1;
  double eps = 0;
  // Where token t of mini-batch m of (batch bi, head hi) is in eta, deta: m eM + bi eB + hi eH +
  // t eT; in q, k, v, o and their cotangents m tM + bi tB + hi tH + t tT, f times those
  // (InnerLoopShape::etaOffset and tokenOffset as strides). Used by the token-major kernels.
  int64_t eM = 0, eB = 0, eH = 0, tM = 0, tB = 0, tH = 0;
  int eT = 1, tT = 0;
  Layout L;
  // Inputs of both directions.
  const float *q = nullptr, *k = nullptr, *v = nullptr, *eta = nullptr, *tau = nullptr,
              *tauLast = nullptr, *gamma = nullptr, *lambda = nullptr;
  // Forward.
  const float *W0 = nullptr, *b0 = nullptr;
  float *Wfinal = nullptr, *bfinal = nullptr, *o = nullptr, *ckptWOut = nullptr,
        *ckptBOut = nullptr;
  // Backward.
  const float *ckptW = nullptr, *ckptB = nullptr, *dWfinal = nullptr, *dbfinal = nullptr,
              *dO = nullptr;
  float *dW0 = nullptr, *db0 = nullptr, *dq = nullptr, *dk = nullptr, *dv = nullptr,
        *deta = nullptr;
  double *partial = nullptr; // [B H, partialDoubles]
  float *slots = nullptr;    // [B H, group, Slot::floats]
};

#include "runtime/backend/cuda/AsyncCopy.cuh"
#include "runtime/backend/cuda/InnerLoopArgs.cuh"

// Sum over the warp; every lane gets the same bits (a + b == b + a at each butterfly level).
__device__ __forceinline__ double warpSum(double x) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1)
    x += __shfl_xor_sync(0xffffffffu, x, m);
  return x;
}

// Two sums at once (independent butterflies, interleaved).
__device__ __forceinline__ void warpSum2(double &x, double &y) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) {
    x += __shfl_xor_sync(0xffffffffu, x, m);
    y += __shfl_xor_sync(0xffffffffu, y, m);
  }
}

// acc[r][c] += sum_k x_r[k] M(k, lane + 32 c) over k < FP, with M(k, e) = M[k ldw + e] or, TRANS,
// M[e ldw + k]. The x_r are FP-float rows in shared memory (16-byte aligned), the same for the
// whole warp (broadcast reads).
template <int CPL, int NR, bool TRANS>
__device__ __forceinline__ void rowsTimes(float (&acc)[NR][CPL], const float *(&x)[NR],
                                          const float *M, int lane) {
  constexpr int FP = 32 * CPL, LDW = FP + 1;
#pragma unroll 2
  for (int k = 0; k < FP; k += 4) {
    float4 xv[NR];
#pragma unroll
    for (int r = 0; r < NR; ++r)
      xv[r] = *reinterpret_cast<const float4 *>(x[r] + k);
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
      for (int c = 0; c < CPL; ++c) {
        const int e = lane + 32 * c;
        const float m = TRANS ? M[e * LDW + k + kk] : M[(k + kk) * LDW + e];
#pragma unroll
        for (int r = 0; r < NR; ++r) {
          const float xs = kk == 0 ? xv[r].x : kk == 1 ? xv[r].y : kk == 2 ? xv[r].z : xv[r].w;
          acc[r][c] = fmaf(xs, m, acc[r][c]);
        }
      }
    }
  }
}

// acc[i][c] += sum_{j < rows} X[j][a0 + i] Y[j][lane + 32 c] for i < 4 (tiles of stride LDX).
template <int CPL>
__device__ __forceinline__ void outerChunk(float (&acc)[4][CPL], const float *X, const float *Y,
                                           int rows, int a0, int lane) {
  constexpr int LDX = 32 * CPL + 4;
  for (int j = 0; j < rows; ++j) {
    const float4 xv = *reinterpret_cast<const float4 *>(X + j * LDX + a0);
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const float y = Y[j * LDX + lane + 32 * c];
      acc[0][c] = fmaf(xv.x, y, acc[0][c]);
      acc[1][c] = fmaf(xv.y, y, acc[1][c]);
      acc[2][c] = fmaf(xv.z, y, acc[2][c]);
      acc[3][c] = fmaf(xv.w, y, acc[3][c]);
    }
  }
}

// Dot of two FP-float shared rows (16-byte aligned).
template <int CPL> __device__ __forceinline__ float rowDot(const float *x, const float *y) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f; // four chains, added at the end
#pragma unroll 4
  for (int k = 0; k < 32 * CPL; k += 4) {
    const float4 a = *reinterpret_cast<const float4 *>(x + k);
    const float4 b = *reinterpret_cast<const float4 *>(y + k);
    s0 = fmaf(a.x, b.x, s0);
    s1 = fmaf(a.y, b.y, s1);
    s2 = fmaf(a.z, b.z, s2);
    s3 = fmaf(a.w, b.w, s3);
  }
  return (s0 + s1) + (s2 + s3);
}

// One block's view: who this thread is, its columns, and the shared-memory regions.
template <int CPL, int MB, bool TM> struct Ctx {
  static constexpr int FP = 32 * CPL, LDX = FP + 4, LDW = FP + 1, LDA = MB + 1;
  static constexpr int RW = MB / kWarps; // rows per warp

  const Args &a;
  float *sm;
  int tid, lane, warp, bh, bi, hi, b, f;
  double invF; // 1 / f
  float tauLast;
  bool valid[CPL]; // column lane + 32 c < f
  float gamma[CPL], lambda[CPL];

  __device__ Ctx(const Args &args, float *smem) : a(args), sm(smem) {
    tid = threadIdx.x;
    lane = tid & 31;
    warp = tid >> 5;
    bh = blockIdx.x;
    bi = bh / a.heads;
    hi = bh - bi * a.heads;
    b = a.b;
    f = a.f;
    invF = 1.0 / double(f);
    tauLast = *a.tauLast;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const int e = lane + 32 * c;
      valid[c] = e < f;
      gamma[c] = valid[c] ? a.gamma[int64_t(hi) * f + e] : 0.0f;
      lambda[c] = valid[c] ? a.lambda[int64_t(hi) * f + e] : 0.0f;
    }
  }
  __device__ int col(int c) const { return lane + 32 * c; }
  __device__ int row(int r) const { return warp + kWarps * r; } // this warp's r-th row
  // Buffer set s.
  __device__ float *K(int s) const { return sm + a.L.set[s] + a.L.setK; }
  __device__ float *Q(int s) const { return sm + a.L.set[s] + a.L.setQ; }
  __device__ float *G(int s) const { return sm + a.L.set[s] + a.L.setG; }
  __device__ float *A(int s) const { return sm + a.L.set[s] + a.L.setA; }
  __device__ float *eta(int s) const { return sm + a.L.set[s] + a.L.setEta; }
  __device__ float *W(int s) const { return sm + a.L.W[s]; }
  __device__ float *bias() const { return sm + a.L.bias; }
  __device__ float *tau() const { return sm + a.L.tau; }
  __device__ float *EG() const { return sm + a.L.EG; }
  __device__ float *dZ() const { return sm + a.L.EG; } // the backward walk's use of EG
  __device__ float *dW() const { return sm + a.L.dW; }
  __device__ float *db() const { return sm + a.L.db; }
  __device__ float *dZbar() const { return sm + a.L.dZbar; }
  __device__ float *dA() const { return sm + a.L.dA; }
  __device__ float *dE() const { return sm + a.L.dE; }
  __device__ float *dEl() const { return sm + a.L.dEl; }

  // Offset of token 0 of mini-batch m of this (batch, head) in q, k, v, o and their cotangents,
  // and the stride of their token rows; the same in eta, deta. Mini-batch major: the tile of
  // ((m B + bi) H + hi) (compile-time strides f and 1, the code of the one-layout kernels, which
  // stay free of spills); token major: Args' strides.
  __device__ int64_t tileRow(int m) const { return (int64_t(m) * a.batch + bi) * a.heads + hi; }
  __device__ int64_t tileAt(int m) const {
    return TM ? m * a.tM + bi * a.tB + hi * a.tH : tileRow(m) * b * f;
  }
  __device__ int64_t ld() const { return TM ? int64_t(a.tT) : int64_t(f); }
  __device__ int64_t etaAt(int m) const {
    return TM ? m * a.eM + bi * a.eB + hi * a.eH : tileRow(m) * b;
  }
  __device__ int etaLd() const { return TM ? a.eT : 1; }
  // Issue (not wait) the copies of mini-batch m's K, Q, eta into set s.
  __device__ void loadInputs(int m, int s) const {
    const int64_t at = tileAt(m);
    if (TM) {
      copyRowsStrided(K(s), LDX, a.k + at, ld(), b, f);
      copyRowsStrided(Q(s), LDX, a.q + at, ld(), b, f);
    } else {
      copyRows(K(s), LDX, a.k + at, b, f);
      copyRows(Q(s), LDX, a.q + at, b, f);
    }
    if (tid < b)
      cpAsync4(eta(s) + tid, a.eta + etaAt(m) + tid * etaLd());
  }
  // Copy a row-major [f, f] global matrix into a shared [FP, LDW] one (4-byte copies: the shared
  // rows are not 16-byte aligned).
  __device__ void loadMatrix(float *dst, const float *src) const {
    for (int i = tid; i < f * f; i += kThreads) {
      const int r = i / f, c = i - r * f;
      cpAsync4(dst + r * LDW + c, src + i);
    }
  }
  __device__ void storeMatrix(float *dst, const float *src) const {
    for (int i = tid; i < f * f; i += kThreads) {
      const int r = i / f, c = i - r * f;
      dst[i] = src[r * LDW + c];
    }
  }
  __device__ float *slot(int t) const {
    return a.slots + (int64_t(bh) * a.group + t) * slotOf(b, f).floats;
  }
};

// Where forwardStep sends a step's results: the output rows (forward) or the cache slot that the
// backward reads (recompute).
struct StepSink {
  float *out = nullptr;  // o's token 0 of this step (rows Ctx::ld() apart), or null
  float *slot = nullptr; // cache slot, or null
};

// One mini-batch of the scan (spec 2.6) from the state in W(ws), bias(), with the inputs in set s.
// update: also step the state (W, bias) in place. Ends with the block synchronized.
template <int CPL, int MB, bool TM>
__device__ void forwardStep(const Ctx<CPL, MB, TM> &x, int s, int ws, int m, bool update,
                            StepSink sink) {
  using C = Ctx<CPL, MB, TM>;
  constexpr int RW = C::RW, LDX = C::LDX, LDW = C::LDW, LDA = C::LDA;
  const int b = x.b, f = x.f, lane = x.lane;
  const Slot sl = slotOf(b, f);
  float *W = x.W(ws), *bias = x.bias(), *Ks = x.K(s), *Qs = x.Q(s), *Gs = x.G(s), *As = x.A(s),
        *etas = x.eta(s), *EG = x.EG(), *taus = x.tau();
  const int64_t row0 = x.tileAt(m);

  // V of this warp's K rows, straight to registers (only the LayerNorm below reads it).
  float vr[RW][CPL];
#pragma unroll
  for (int r = 0; r < RW; ++r)
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const int j = x.row(r);
      vr[r][c] = (j < b && x.valid[c]) ? x.a.v[row0 + int64_t(j) * x.ld() + x.col(c)] : 0.0f;
    }

  // ---- P1 ----
  // A_ij = q_i . k_j for j <= i (0 above the diagonal), one thread per entry.
  for (int idx = x.tid; idx < b * b; idx += kThreads) {
    const int i = idx / b, j = idx - i * b;
    const float aij = j <= i ? rowDot<CPL>(Qs + i * LDX, Ks + j * LDX) : 0.0f;
    As[i * LDA + j] = aij;
    if (sink.slot)
      sink.slot[sl.A + idx] = aij;
  }
  // [K; Q] rows of this warp times W.
  float acc[2 * RW][CPL];
  const float *xr[2 * RW];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    xr[r] = Ks + x.row(r) * LDX;
    xr[RW + r] = Qs + x.row(r) * LDX;
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      acc[r][c] = acc[RW + r][c] = 0.0f;
  }
  rowsTimes<CPL, 2 * RW, false>(acc, xr, W, lane);
  float bcol[CPL];
#pragma unroll
  for (int c = 0; c < CPL; ++c)
    bcol[c] = bias[x.col(c)];

#pragma unroll
  for (int r = 0; r < RW; ++r) {
    // K rows: z = k W + b; G = grad_z 1/2 |LN(z) - (v - k)|^2 (spec 2.4), closed form as in
    // InnerLoop.cpp: zhat = LN-normalized z, r = gamma zhat + lambda - (v - k), g = gamma r,
    // G = (g - mean(g) - zhat mean(g zhat)) / sigma.
    const int j = x.row(r);
    if (j >= b)
      continue;
    float z[CPL];
    double sum = 0.0;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      z[c] = acc[r][c] + bcol[c];
      if (x.valid[c])
        sum += double(z[c]);
    }
    const double mean = warpSum(sum) * x.invF;
    double sq = 0.0;
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      if (x.valid[c]) {
        const double d = double(z[c]) - mean;
        sq += d * d;
      }
    const double rstd = rsqrt(warpSum(sq) * x.invF + x.a.eps);
    float zh[CPL], rr[CPL], gg[CPL];
    double s1 = 0.0, s2 = 0.0;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      zh[c] = x.valid[c] ? float((double(z[c]) - mean) * rstd) : 0.0f;
      const float kv = Ks[j * LDX + x.col(c)];
      rr[c] = x.valid[c] ? x.gamma[c] * zh[c] + x.lambda[c] - (vr[r][c] - kv) : 0.0f;
      gg[c] = rr[c] * x.gamma[c];
      s1 += double(gg[c]);
      s2 += double(gg[c]) * double(zh[c]);
    }
    warpSum2(s1, s2);
    const double m1 = s1 * x.invF, m2 = s2 * x.invF;
    const float el = x.tauLast * etas[j];
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const float g = x.valid[c] ? float((double(gg[c]) - m1 - double(zh[c]) * m2) * rstd) : 0.0f;
      Gs[j * LDX + x.col(c)] = g;
      EG[j * LDX + x.col(c)] = el * g;
      if (sink.slot && x.valid[c]) {
        const int64_t e = int64_t(j) * f + x.col(c);
        sink.slot[sl.G + e] = g;
        sink.slot[sl.zhat + e] = zh[c];
        sink.slot[sl.r + e] = rr[c];
      }
    }
    if (sink.slot && lane == 0)
      sink.slot[sl.rstd + j] = float(rstd);
  }
  __syncthreads();

  // ---- P2 ----
  // Zbar_i = q_i W + b - sum_{j<=i} tau_i eta_j (1 + A_ij) G_j, then out_i = q_i + gamma LN(Zbar_i)
  // + lambda.
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int i = x.row(r);
    if (i >= b)
      continue;
    float zb[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      zb[c] = acc[RW + r][c] + bcol[c];
    const float ti = taus[i];
#pragma unroll 4
    for (int j = 0; j <= i; ++j) {
      const float coeff = ti * etas[j] * (As[i * LDA + j] + 1.0f);
#pragma unroll
      for (int c = 0; c < CPL; ++c)
        zb[c] = fmaf(-coeff, Gs[j * LDX + x.col(c)], zb[c]);
    }
    double sum = 0.0;
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      if (x.valid[c])
        sum += double(zb[c]);
    const double mean = warpSum(sum) * x.invF;
    double sq = 0.0;
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      if (x.valid[c]) {
        const double d = double(zb[c]) - mean;
        sq += d * d;
      }
    const double rstd = rsqrt(warpSum(sq) * x.invF + x.a.eps);
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      if (!x.valid[c])
        continue;
      const float xh = float((double(zb[c]) - mean) * rstd);
      const int64_t e = int64_t(i) * f + x.col(c);
      if (sink.out)
        sink.out[int64_t(i) * x.ld() + x.col(c)] =
            Qs[i * LDX + x.col(c)] + x.gamma[c] * xh + x.lambda[c];
      if (sink.slot)
        sink.slot[sl.xhat + e] = xh;
    }
    if (sink.slot && lane == 0)
      sink.slot[sl.rstdL + i] = float(rstd);
  }
  if (update) {
    // W -= sum_j k_j^T (tau_last eta_j G_j): this warp's 4-row chunks of W (FP / 4 chunks, CPL per
    // warp), all columns.
    for (int q = x.warp; q < C::FP / 4; q += kWarps) {
      float d[4][CPL];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int c = 0; c < CPL; ++c)
          d[i][c] = 0.0f;
      outerChunk<CPL>(d, Ks, EG, b, 4 * q, lane);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int c = 0; c < CPL; ++c)
          W[(4 * q + i) * LDW + x.col(c)] -= d[i][c];
    }
    // b -= sum_j tau_last eta_j G_j.
    if (x.tid < C::FP) {
      float d = 0.0f;
      for (int j = 0; j < b; ++j)
        d += EG[j * LDX + x.tid];
      bias[x.tid] -= d;
    }
  }
  __syncthreads();
}

// Zero all of the dynamic shared memory (padding rows and columns must read as 0), then the
// per-head constants.
template <int CPL, int MB, bool TM> __device__ void initShared(const Ctx<CPL, MB, TM> &x) {
  for (int i = x.tid; i < x.a.L.total; i += kThreads)
    x.sm[i] = 0.0f;
  __syncthreads();
  if (x.tid < x.b)
    x.tau()[x.tid] = x.a.tau[x.tid];
}

// Two blocks per SM where the registers allow it (f <= 64, b <= 16: shared memory is small there).
template <int CPL, int MB> constexpr int minBlocks() { return CPL <= 2 && MB == 16 ? 2 : 1; }

template <int CPL, int MB, bool TM>
__global__ void __launch_bounds__(kThreads, minBlocks<CPL, MB>())
    innerLoopForwardKernel(const __grid_constant__ Args a) {
  extern __shared__ __align__(16) float smem[];
  const Ctx<CPL, MB, TM> x(a, smem);
  initShared(x);
  const int f = x.f, BH = a.batch * a.heads;
  // The state: W0, b0 of this (batch, head).
  x.loadMatrix(x.W(0), a.W0 + int64_t(x.bh) * f * f);
  if (x.tid < f)
    cpAsync4(x.bias() + x.tid, a.b0 + int64_t(x.bh) * f + x.tid);
  x.loadInputs(0, 0);
  cpAsyncCommit();
  for (int m = 0; m < a.n; ++m) {
    const int s = m & 1;
    if (m + 1 < a.n)
      x.loadInputs(m + 1, s ^ 1); // prefetch into the other set (free since the last step)
    cpAsyncCommit();
    cpAsyncWait<1>(); // all but the prefetch: step m's inputs (and the state) are here
    __syncthreads();
    if (m % a.group == 0) {
      const int64_t g = m / a.group;
      x.storeMatrix(a.ckptWOut + (g * BH + x.bh) * f * f, x.W(0));
      if (x.tid < f)
        a.ckptBOut[(g * BH + x.bh) * f + x.tid] = x.bias()[x.tid];
    }
    forwardStep(x, s, 0, m, true, StepSink{a.o + x.tileAt(m), nullptr});
  }
  x.storeMatrix(a.Wfinal + int64_t(x.bh) * f * f, x.W(0));
  if (x.tid < f)
    a.bfinal[int64_t(x.bh) * f + x.tid] = x.bias()[x.tid];
}

// The reverse of forwardStep for step t of group g (mini-batch m), from its cache slot, with W_t
// in W(ws) and Q, K, G, A, eta in set s; dW, db hold the cotangents of the step's output state
// and are replaced by those of its input state. Accumulates this thread's dgamma, dlambda
// partials (and dtau, dtau_last for the threads that own them).
template <int CPL, int MB, bool TM>
__device__ void backwardStep(const Ctx<CPL, MB, TM> &x, int s, int ws, int m, int t,
                             double (&dgam)[CPL], double (&dlam)[CPL], double &dtauAcc,
                             double &dtauLastAcc) {
  using C = Ctx<CPL, MB, TM>;
  constexpr int RW = C::RW, LDX = C::LDX, LDW = C::LDW, LDA = C::LDA;
  const int b = x.b, f = x.f, lane = x.lane;
  const Slot sl = slotOf(b, f);
  const float *slot = x.slot(t);
  float *W = x.W(ws), *dW = x.dW(), *db = x.db(), *Ks = x.K(s), *Qs = x.Q(s), *Gs = x.G(s),
        *As = x.A(s), *etas = x.eta(s), *taus = x.tau(), *dZbar = x.dZbar(), *dZ = x.dZ(),
        *dAs = x.dA(), *dEs = x.dE(), *dEls = x.dEl();
  const int64_t row0 = x.tileAt(m);

  // This warp's rows of dO and of the cache (the same thread wrote the cache rows); zhat, r and
  // 1/sigma of LN(z) are read at B2.
  float dO[RW][CPL], xh[RW][CPL], rstdL[RW];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    rstdL[r] = j < b ? slot[sl.rstdL + j] : 0.0f;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const bool ok = j < b && x.valid[c];
      const int64_t e = int64_t(j) * f + x.col(c);
      dO[r][c] = ok ? x.a.dO[row0 + int64_t(j) * x.ld() + x.col(c)] : 0.0f;
      xh[r][c] = ok ? slot[sl.xhat + e] : 0.0f;
    }
  }

  // ---- B1 ----
  // With dW' = dW, db' = db (the output state's cotangents): P = K dW', T = G dW'^T.
  float P[RW][CPL], T[RW][CPL], dq[RW][CPL], dkr[RW][CPL], dP[RW][CPL];
  const float *kr[RW], *gr[RW], *zr[RW];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    kr[r] = Ks + x.row(r) * LDX;
    gr[r] = Gs + x.row(r) * LDX;
    zr[r] = dZbar + x.row(r) * LDX;
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      P[r][c] = T[r][c] = 0.0f;
  }
  rowsTimes<CPL, RW, false>(P, kr, dW, lane);
  rowsTimes<CPL, RW, true>(T, gr, dW, lane);
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    const float el = j < b ? x.tauLast * etas[j] : 0.0f;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      dP[r][c] = -P[r][c] - db[x.col(c)]; // d(el_j G_j)
      dkr[r][c] = -el * T[r][c];
    }
  }
  // out_i = q_i + gamma xhat_i + lambda: dQ = dO, dgamma, dlambda, and dZbar through LN.
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int i = x.row(r);
    double m1 = 0.0, m2 = 0.0;
    float dln[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      dq[r][c] = dO[r][c];
      dgam[c] += double(dO[r][c]) * double(xh[r][c]);
      dlam[c] += double(dO[r][c]);
      dln[c] = dO[r][c] * x.gamma[c];
      m1 += double(dln[c]);
      m2 += double(dln[c]) * double(xh[r][c]);
    }
    if (i >= b)
      continue; // (warp-uniform; the padding rows' values above are all 0)
    warpSum2(m1, m2);
    m1 *= x.invF;
    m2 *= x.invF;
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      dZbar[i * LDX + x.col(c)] =
          x.valid[c] ? float(double(rstdL[r]) * (double(dln[c]) - m1 - double(xh[r][c]) * m2))
                     : 0.0f;
  }
  __syncwarp();
  // dQ += dZbar W^T (this warp's own dZbar rows).
  rowsTimes<CPL, RW, true>(dq, zr, W, lane);
  __syncthreads();

  // ---- B2 ----
  float zh[RW][CPL], rr[RW][CPL], rstd[RW];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    rstd[r] = j < b ? slot[sl.rstd + j] : 0.0f;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const bool ok = j < b && x.valid[c];
      const int64_t e = int64_t(j) * f + x.col(c);
      zh[r][c] = ok ? slot[sl.zhat + e] : 0.0f;
      rr[r][c] = ok ? slot[sl.r + e] : 0.0f;
    }
  }
  // Zbar_i = ... - sum_{j<=i} C_ij G_j, C_ij = E_ij (1 + A_ij), E_ij = tau_i eta_j:
  // dC_ij = -dZbar_i . G_j, dE = dC (1 + A), dA = dC E (0 above the diagonal).
  for (int idx = x.tid; idx < b * b; idx += kThreads) {
    const int i = idx / b, j = idx - i * b;
    float dE = 0.0f, dA = 0.0f;
    if (j <= i) {
      const float dC = -rowDot<CPL>(dZbar + i * LDX, Gs + j * LDX);
      const float E = taus[i] * etas[j];
      dE = dC * (As[i * LDA + j] + 1.0f);
      dA = dC * E;
    }
    dEs[i * LDA + j] = dE;
    dAs[i * LDA + j] = dA;
  }
  // Rows j: dG_j = el_j dP_j - sum_{i>=j} C_ij dZbar_i; dEl_j = dP_j . G_j; then back through
  // G_j = rstd (g - s1/f - zhat s2/f), g = r gamma, r = gamma zhat + lambda - (v - k),
  // zhat = (z - mean) rstd (InnerLoop.cpp's stepBackward, same steps).
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    if (j >= b)
      continue;
    const float ej = etas[j], el = x.tauLast * ej;
    float dG[CPL];
    double sEl = 0.0;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      dG[c] = el * dP[r][c];
      sEl += double(dP[r][c]) * double(Gs[j * LDX + x.col(c)]);
    }
#pragma unroll 4
    for (int i = j; i < b; ++i) {
      const float coeff = taus[i] * ej * (As[i * LDA + j] + 1.0f);
#pragma unroll
      for (int c = 0; c < CPL; ++c)
        dG[c] = fmaf(-coeff, dZbar[i * LDX + x.col(c)], dG[c]);
    }
    const double dEl = warpSum(sEl);
    if (lane == 0)
      dEls[j] = float(dEl);
    // (dP and dZbar are 0 in the padding columns, so is dG.)
    const double rs = double(rstd[r]), sigma = 1.0 / rs;
    float gg[CPL];
    double s1 = 0.0, s2 = 0.0;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      gg[c] = rr[r][c] * x.gamma[c];
      s1 += double(gg[c]);
      s2 += double(gg[c]) * double(zh[r][c]);
    }
    warpSum2(s1, s2);
    s1 *= x.invF; // mean(g)
    s2 *= x.invF; // mean(g zhat)
    double drstd = 0.0, sdu = 0.0, sduz = 0.0;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const double u = double(gg[c]) - s1 - double(zh[r][c]) * s2;
      drstd += double(dG[c]) * u;
      const double du = rs * double(dG[c]);
      sdu += du;
      sduz += du * double(zh[r][c]);
    }
    drstd = warpSum(drstd);
    warpSum2(sdu, sduz);
    const double mdu = sdu * x.invF, mduz = sduz * x.invF;
    double dzh[CPL], drstd2 = 0.0;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const double du = rs * double(dG[c]);
      const double dg = du - mdu - double(zh[r][c]) * mduz;
      const double dr = dg * double(x.gamma[c]);
      if (x.valid[c]) {
        dgam[c] += dg * double(rr[r][c]) + dr * double(zh[r][c]);
        dlam[c] += dr;
      }
      dzh[c] = -du * s2 - mduz * double(gg[c]) + dr * double(x.gamma[c]);
      drstd2 += dzh[c] * double(zh[r][c]);
      dkr[r][c] += float(dr);
      if (x.valid[c])
        x.a.dv[row0 + int64_t(j) * x.ld() + x.col(c)] = float(-dr);
    }
    // zhat = zc rstd, rstd = (mean(zc^2) + eps)^-1/2, zc = z - mean(z); zc = zhat / rstd.
    drstd += warpSum(drstd2) * sigma;
    const double dvar = -0.5 * drstd * rs * rs * rs;
    const double dzc = 2.0 * dvar * sigma * x.invF; // d var / d zc = 2 zc / f, zc = zhat sigma
    double dz[CPL], sdz = 0.0;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      dz[c] = x.valid[c] ? dzh[c] * rs + dzc * double(zh[r][c]) : 0.0;
      sdz += dz[c];
    }
    const double mdz = warpSum(sdz) * x.invF;
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      dZ[j * LDX + x.col(c)] = x.valid[c] ? float(dz[c] - mdz) : 0.0f;
  }
  __syncthreads();

  // ---- B3 ----
  // Rows: dK_j += dZ_j W^T + sum_{i>=j} dA_ij q_i; dQ_i += sum_{j<=i} dA_ij k_j.
  const float *dzr[RW];
#pragma unroll
  for (int r = 0; r < RW; ++r)
    dzr[r] = dZ + x.row(r) * LDX;
  rowsTimes<CPL, RW, true>(dkr, dzr, W, lane);
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    if (j >= b)
      continue;
#pragma unroll 4
    for (int i = j; i < b; ++i) {
      const float d = dAs[i * LDA + j];
#pragma unroll
      for (int c = 0; c < CPL; ++c)
        dkr[r][c] = fmaf(d, Qs[i * LDX + x.col(c)], dkr[r][c]);
    }
#pragma unroll 4
    for (int jj = 0; jj <= j; ++jj) { // here j plays i
      const float d = dAs[j * LDA + jj];
#pragma unroll
      for (int c = 0; c < CPL; ++c)
        dq[r][c] = fmaf(d, Ks[jj * LDX + x.col(c)], dq[r][c]);
    }
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      if (x.valid[c]) {
        const int64_t e = row0 + int64_t(j) * x.ld() + x.col(c);
        x.a.dq[e] = dq[r][c];
        x.a.dk[e] = dkr[r][c];
      }
  }
  // dW += Q^T dZbar + K^T dZ (this warp's 4-row chunks), db += column sums of dZbar and dZ.
  for (int q = x.warp; q < C::FP / 4; q += kWarps) {
    float d[4][CPL];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int c = 0; c < CPL; ++c)
        d[i][c] = 0.0f;
    outerChunk<CPL>(d, Qs, dZbar, b, 4 * q, lane);
    outerChunk<CPL>(d, Ks, dZ, b, 4 * q, lane);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int c = 0; c < CPL; ++c)
        dW[(4 * q + i) * LDW + x.col(c)] += d[i][c];
  }
  if (x.tid < C::FP) {
    float d = 0.0f;
    for (int i = 0; i < b; ++i)
      d += dZbar[i * LDX + x.tid];
    for (int j = 0; j < b; ++j)
      d += dZ[j * LDX + x.tid];
    db[x.tid] += d;
  }
  // Positions: deta_j = sum_{i>=j} dE_ij tau_i + dEl_j tau_last; dtau_i += sum_{j<=i} dE_ij eta_j;
  // dtau_last += sum_j dEl_j eta_j.
  if (x.tid < b) {
    const int j = x.tid;
    double de = 0.0;
    for (int i = j; i < b; ++i)
      de += double(dEs[i * LDA + j]) * double(taus[i]);
    de += double(dEls[j]) * double(x.tauLast);
    x.a.deta[x.etaAt(m) + j * x.etaLd()] = float(de);
    const int i = x.tid;
    double dt = 0.0;
    for (int jj = 0; jj <= i; ++jj)
      dt += double(dEs[i * LDA + jj]) * double(etas[jj]);
    dtauAcc += dt;
    if (x.tid == 0) {
      double dl = 0.0;
      for (int jj = 0; jj < b; ++jj)
        dl += double(dEls[jj]) * double(etas[jj]);
      dtauLastAcc += dl;
    }
  }
  __syncthreads();
}

template <int CPL, int MB, bool TM>
__global__ void __launch_bounds__(kThreads, minBlocks<CPL, MB>())
    innerLoopBackwardKernel(const __grid_constant__ Args a) {
  extern __shared__ __align__(16) float smem[];
  const Ctx<CPL, MB, TM> x(a, smem);
  using C = Ctx<CPL, MB, TM>;
  initShared(x);
  const int f = x.f, b = x.b, K = a.group, BH = a.batch * a.heads, nb = a.L.nb;
  // The cotangents of the final state.
  for (int i = x.tid; i < f * f; i += kThreads) {
    const int r = i / f, c = i - r * f;
    x.dW()[r * C::LDW + c] = a.dWfinal[int64_t(x.bh) * f * f + i];
  }
  if (x.tid < f)
    x.db()[x.tid] = a.dbfinal[int64_t(x.bh) * f + x.tid];
  double dgam[CPL], dlam[CPL], dtauAcc = 0.0, dtauLastAcc = 0.0;
#pragma unroll
  for (int c = 0; c < CPL; ++c)
    dgam[c] = dlam[c] = 0.0;
  const Slot sl = slotOf(b, f);

  for (int g = a.n / K - 1; g >= 0; --g) {
    // Recompute the group's forward from its checkpoint (state in W(0)), filling the slots.
    x.loadMatrix(x.W(0), a.ckptW + (int64_t(g) * BH + x.bh) * f * f);
    if (x.tid < f)
      cpAsync4(x.bias() + x.tid, a.ckptB + (int64_t(g) * BH + x.bh) * f + x.tid);
    x.loadInputs(g * K, 0);
    cpAsyncCommit();
    for (int t = 0; t < K; ++t) {
      const int m = g * K + t;
      int s = 0;
      if (nb == 2) {
        s = t & 1;
        if (t + 1 < K)
          x.loadInputs(m + 1, s ^ 1);
        cpAsyncCommit();
        cpAsyncWait<1>();
      } else {
        if (t > 0) {
          x.loadInputs(m, 0);
          cpAsyncCommit();
        }
        cpAsyncWait<0>();
      }
      __syncthreads();
      if (t >= 1 && t + 1 < K)
        x.storeMatrix(x.slot(t) + sl.W, x.W(0)); // W_t for the walk below
      forwardStep(x, s, 0, m, t + 1 < K, StepSink{nullptr, x.slot(t)});
    }
    // Back through the group's steps; step K-1's inputs, G, A and W_{K-1} are in place.
    int s = nb == 2 ? (K - 1) & 1 : 0, ws = 0;
    for (int t = K - 1; t >= 0; --t) {
      const int m = g * K + t;
      // The inputs of step tl into set sl_, its start state into W(wl): the prefetch of step t-1
      // (nb = 2) or this step's load (nb = 1; step K-1 needs none).
      auto load = [&](int tl, int sset, int wbuf) {
        const int ml = g * K + tl;
        x.loadInputs(ml, sset);
        copyRows(x.G(sset), C::LDX, x.slot(tl) + sl.G, b, f);
        copyRows(x.A(sset), C::LDA, x.slot(tl) + sl.A, b, b);
        x.loadMatrix(x.W(wbuf),
                     tl == 0 ? a.ckptW + (int64_t(g) * BH + x.bh) * f * f : x.slot(tl) + sl.W);
        cpAsyncCommit();
      };
      if (nb == 2) {
        if (t > 0)
          load(t - 1, s ^ 1, ws ^ 1);
      } else if (t + 1 < K) {
        load(t, 0, 0);
        cpAsyncWait<0>();
        __syncthreads();
      }
      backwardStep(x, s, ws, m, t, dgam, dlam, dtauAcc, dtauLastAcc);
      if (nb == 2) {
        cpAsyncWait<0>();
        __syncthreads();
        s ^= 1;
        ws ^= 1;
      }
    }
  }

  // dW0, db0; this block's partial sums of the shared cotangents.
  for (int i = x.tid; i < f * f; i += kThreads) {
    const int r = i / f, c = i - r * f;
    a.dW0[int64_t(x.bh) * f * f + i] = x.dW()[r * C::LDW + c];
  }
  if (x.tid < f)
    a.db0[int64_t(x.bh) * f + x.tid] = x.db()[x.tid];
  double *red = reinterpret_cast<double *>(smem); // [kWarps][2][FP], over the buffer sets
#pragma unroll
  for (int c = 0; c < CPL; ++c) {
    red[(x.warp * 2 + 0) * C::FP + x.col(c)] = dgam[c];
    red[(x.warp * 2 + 1) * C::FP + x.col(c)] = dlam[c];
  }
  __syncthreads();
  double *part = a.partial + int64_t(x.bh) * partialDoubles(b, f);
  if (x.tid < f) {
    double sg = 0.0, sla = 0.0;
    for (int w = 0; w < kWarps; ++w) {
      sg += red[(w * 2 + 0) * C::FP + x.tid];
      sla += red[(w * 2 + 1) * C::FP + x.tid];
    }
    part[x.tid] = sg;
    part[f + x.tid] = sla;
  }
  if (x.tid < b)
    part[2 * f + x.tid] = dtauAcc;
  if (x.tid == 0)
    part[2 * f + b] = dtauLastAcc;
}

// The shared cotangents: sums of the per-(batch, head) partials in (batch, head) order.
__global__ void innerLoopSharedKernel(int batch, int heads, int b, int f, const double *partial,
                                      float *dtau, float *dtauLast, float *dgamma, float *dlambda) {
  const int64_t per = partialDoubles(b, f);
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  // i < b: dtau[i]; i == b: dtau_last; then H f gammas, H f lambdas.
  const int64_t count = b + 1 + 2 * int64_t(heads) * f;
  if (i >= count)
    return;
  double acc = 0.0;
  if (i <= b) {
    for (int64_t bh = 0; bh < int64_t(batch) * heads; ++bh)
      acc += partial[bh * per + 2 * f + i];
    if (i < b)
      dtau[i] = float(acc);
    else
      *dtauLast = float(acc);
    return;
  }
  const int64_t j = i - b - 1;
  const bool isGamma = j < int64_t(heads) * f;
  const int64_t hf = isGamma ? j : j - int64_t(heads) * f, hi = hf / f, e = hf % f;
  for (int64_t bi = 0; bi < batch; ++bi)
    acc += partial[(bi * heads + hi) * per + (isGamma ? 0 : f) + e];
  (isGamma ? dgamma : dlambda)[hf] = float(acc);
}

// --- host side ----------------------------------------------------------------------------------
void checkShape(const cpu::InnerLoopShape &s) {
  if (s.n <= 0 || s.batch <= 0 || s.heads <= 0 || s.miniBatch <= 0 || s.headDim <= 0 ||
      s.group <= 0 || s.n % s.group != 0)
    throw std::invalid_argument("inner_loop: bad shape (n " + std::to_string(s.n) + ", group " +
                                std::to_string(s.group) + ")");
  if (s.headDim > kMaxHeadDim || s.miniBatch > kMaxMiniBatch)
    throw std::invalid_argument("inner_loop (cuda): head dim " + std::to_string(s.headDim) +
                                " / mini-batch " + std::to_string(s.miniBatch) +
                                " above the supported 128 / 32");
  if (s.batch * s.heads > (int64_t(1) << 31) - 1 || s.n > (int64_t(1) << 30))
    throw std::invalid_argument("inner_loop (cuda): batch x heads or n too large");
}
int cplOf(const cpu::InnerLoopShape &s) { return int((s.headDim + 31) / 32); }
int mbOf(const cpu::InnerLoopShape &s) { return s.miniBatch <= 16 ? 16 : 32; }

int currentDevice() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess)
    dev = 0;
  return dev;
}
// The opt-in limit of the current device (a query, no synchronization).
int maxSharedBytes() {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, currentDevice()) !=
      cudaSuccess)
    v = 48 * 1024;
  return v;
}
// The backward's layout: with prefetch (two buffer sets) when it fits.
Layout backwardLayout(const cpu::InnerLoopShape &s) {
  Layout L = makeLayout(cplOf(s), mbOf(s), 2, true);
  if (size_t(L.total) * 4 > size_t(maxSharedBytes()))
    L = makeLayout(cplOf(s), mbOf(s), 1, true);
  return L;
}
void checkFits(const Layout &L, const char *what) {
  const size_t bytes = size_t(L.total) * 4;
  if (bytes > size_t(maxSharedBytes()))
    throw std::invalid_argument(std::string("inner_loop (cuda): ") + what + " needs " +
                                std::to_string(bytes) + " bytes of shared memory, the device has " +
                                std::to_string(maxSharedBytes()));
}

Args argsOf(const cpu::InnerLoopShape &s, const Layout &L) {
  Args a;
  setShape(s, a);
  a.b = int(s.miniBatch);
  a.f = int(s.headDim);
  a.L = L;
  return a;
}

// Launch kernel<CPL, MB, tokenMajor> with L's shared memory (raising the kernel's limit above
// 48 KiB once).
template <template <int, int, bool> class Launch>
void dispatch(const cpu::InnerLoopShape &s, const Args &a) {
  const int cpl = cplOf(s), mb = mbOf(s);
#define TTT_CASE(C, M)                                                                             \
  if (cpl == C && mb == M)                                                                         \
    return s.tokenMajor ? Launch<C, M, true>::run(a) : Launch<C, M, false>::run(a);
  // clang-format off
  TTT_CASE(1, 16) TTT_CASE(2, 16) TTT_CASE(3, 16) TTT_CASE(4, 16)
  TTT_CASE(1, 32) TTT_CASE(2, 32) TTT_CASE(3, 32) TTT_CASE(4, 32)
  // clang-format on
#undef TTT_CASE
}

// The dynamic shared memory limit each kernel has been given, per device (the attribute is per
// device; it is set again only when a launch needs more).
constexpr int kMaxDevices = 64;
using AttrBytes = std::atomic<int>[kMaxDevices];
template <typename Kernel> void launch(Kernel kernel, const Args &a, AttrBytes &given) {
  const int bytes = a.L.total * 4, dev = currentDevice();
  if (bytes > 48 * 1024 && (dev >= kMaxDevices || bytes > given[dev].load())) {
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (dev < kMaxDevices)
      given[dev].store(bytes);
  }
  kernel<<<a.batch * a.heads, kThreads, bytes>>>(a);
}
template <int CPL, int MB, bool TM> struct LaunchForward {
  static void run(const Args &a) {
    static AttrBytes given = {};
    launch(innerLoopForwardKernel<CPL, MB, TM>, a, given);
  }
};
template <int CPL, int MB, bool TM> struct LaunchBackward {
  static void run(const Args &a) {
    static AttrBytes given = {};
    launch(innerLoopBackwardKernel<CPL, MB, TM>, a, given);
  }
};

} // namespace

size_t innerLoopForwardWorkspace(const cpu::InnerLoopShape &) { return 0; }
size_t innerLoopBackwardWorkspace(const cpu::InnerLoopShape &s, InnerLoopMath math) {
  const int64_t BH = s.batch * s.heads;
  const int b = int(s.miniBatch), f = int(s.headDim);
  const size_t exact = align256(size_t(BH * partialDoubles(b, f)) * sizeof(double)) +
                       size_t(BH * s.group * slotOf(b, f).floats) * sizeof(float);
  if (math == InnerLoopMath::TensorCore && innerLoopTensorCoreSupports(s))
    return std::max(exact, innerLoopTensorCoreBackwardWorkspace(s));
  return exact;
}

void innerLoopForward(const cpu::InnerLoopShape &s, const float *W0, const float *b0,
                      const float *q, const float *k, const float *v, const float *eta,
                      const float *tau, const float *tauLast, const float *gamma,
                      const float *lambda, float *Wfinal, float *bfinal, float *o, float *ckptW,
                      float *ckptB, void * /*workspace: none needed*/, InnerLoopMath math,
                      float *cache) {
  if (math == InnerLoopMath::TensorCore && innerLoopTensorCoreSupports(s))
    return innerLoopForwardTensorCore(s, W0, b0, q, k, v, eta, tau, tauLast, gamma, lambda, Wfinal,
                                      bfinal, o, ckptW, ckptB, cache);
  checkShape(s);
  const Layout L = makeLayout(cplOf(s), mbOf(s), 2, false);
  checkFits(L, "the forward");
  Args a = argsOf(s, L);
  setForwardTensors(a, W0, b0, q, k, v, eta, tau, tauLast, gamma, lambda, Wfinal, bfinal, o, ckptW,
                    ckptB);
  dispatch<LaunchForward>(s, a);
}

void innerLoopBackward(const cpu::InnerLoopShape &s, const float *ckptW, const float *ckptB,
                       const float *q, const float *k, const float *v, const float *eta,
                       const float *tau, const float *tauLast, const float *gamma,
                       const float *lambda, const float *dWfinal, const float *dbfinal,
                       const float *dO, float *dW0, float *db0, float *dq, float *dk, float *dv,
                       float *deta, float *dtau, float *dtauLast, float *dgamma, float *dlambda,
                       void *workspace, InnerLoopMath math, const float *cache) {
  if (math == InnerLoopMath::TensorCore && innerLoopTensorCoreSupports(s))
    return innerLoopBackwardTensorCore(s, ckptW, ckptB, q, k, v, eta, tau, tauLast, gamma, lambda,
                                       dWfinal, dbfinal, dO, dW0, db0, dq, dk, dv, deta, dtau,
                                       dtauLast, dgamma, dlambda, workspace, cache);
  checkShape(s);
  const Layout L = backwardLayout(s);
  checkFits(L, "the backward");
  Args a = argsOf(s, L);
  setBackwardTensors(a, s, ckptW, ckptB, q, k, v, eta, tau, tauLast, gamma, lambda, dWfinal,
                     dbfinal, dO, dW0, db0, dq, dk, dv, deta, workspace);
  const int b = int(s.miniBatch), f = int(s.headDim);
  dispatch<LaunchBackward>(s, a);
  const int64_t count = b + 1 + 2 * s.heads * f;
  innerLoopSharedKernel<<<int((count + 255) / 256), 256>>>(a.batch, a.heads, b, f, a.partial, dtau,
                                                           dtauLast, dgamma, dlambda);
}
} // namespace ttt::cuda
