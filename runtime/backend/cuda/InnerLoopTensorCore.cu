// The fused TTT-Linear inner loop on tensor cores (Kernels.h: InnerLoopMath::TensorCore), the
// path of bf16 plans: the semantics of runtime/backend/cpu/InnerLoop.cpp as InnerLoop.cu computes
// them, with every matrix product of a step on mma.sync m16n8k8 (TF32 operands, fp32
// accumulation) instead of FMA loops, and the LayerNorm statistics in fp32 instead of double.
// Spec 3.4's fp32 islands stay fp32: the W/b state and its update (W -= K^T (eta G) as three TF32
// products, hi*hi + hi*lo + lo*hi, about fp32 accuracy; W and dW accumulate in fp32), the LN-L2
// gradient, norm statistics, eta/tau, the b x b score accumulation.
//
// Shapes: mini-batch b = 16, head dim f = 64 or 96 (template F); the launchers in InnerLoop.cu
// fall back to the exact kernels for anything else (innerLoopTensorCoreSupports). Either layout
// of InnerLoopShape, kernels instantiated per layout (TM) as in InnerLoop.cu: same bits in both.
//
// Block and thread layout (256 threads, 8 warps), one block per (batch, head) as InnerLoop.cu:
//  - W, and in the backward dW and W_t, stay in shared memory in fp32 for the whole scan, row
//    stride LDW = F + 8 floats; [16, F] tiles have row stride LDX = F + 4, [16, 16] ones LDA = 20.
//    Fragments that run along rows (A row-major, B stored [n][k]) load with ldmatrix (conflict
//    free at these strides, 2-way for W^T), the others word by word (W as B conflict free, the
//    transposed tiles 2-way);
//  - matrix products: each warp takes whole 16 x 8 output tiles (round robin over the product's
//    tiles), the k loop outermost so a warp's tiles are independent mma chains, and an epilogue
//    writes the four accumulator values of each thread (rows g, g + 8; columns 2t, 2t + 1) where
//    they go (a shared tile, W in place, or global memory), each pair of columns as one 8-byte
//    access; in the [F, F] products (W, dW updates) a warp's tiles share their row block, so the
//    A fragment (and its TF32 split) is loaded once per k step for all of them (mmaRow);
//  - row work (LayerNorms and their backward, the closed-form gradient): half warp h of warp w
//    owns row w + 8 h of every [16, F] tile, its lane l the F / 16 adjacent columns from
//    F / 16 (l mod 16) (16- or 8-byte accesses): row statistics are half-warp butterflies of 4
//    levels, both rows of a warp in the same shuffles (every lane of a half gets the same bits),
//    no atomics, so results are bit-identical run to run;
//  - a step is phases separated by __syncthreads; each phase puts products that do not depend on
//    its row work beside it, so the warps overlap the two.
//
// Forward step (forwardStep), from the state W, bias and the inputs K, Q, eta of set s:
//   F1: [K; Q] W + b -> Z, QB tiles; A = Q K^T (lower triangle).                     sync
//   F2: rows j: LN(z), G, eta-scaled EG = tau_last eta_j G_j; coefficients
//       Cm_ij = tau_i eta_j (1 + A_ij), j <= i.                                         sync
//   F3: Zbar = QB - Cm G (in QB); b -= column sums of EG.                               sync
//   F4: rows i: LN(Zbar) -> out; W -= K^T EG (the caller synchronizes before the next step).
// Backward step (backwardStep), dW, db the cotangents of the step's output state:
//   Ba: dP = -(K dW + db), dK = -el (G dW^T); rows: dZbar (LN backward of out), dQ = dO, dgamma,
//       dlambda; Cm.                                                                    sync
//   Bb: dG = el dP - Cm^T dZbar; dC = -dZbar G^T -> dE, dA; rows: dEl = dP . G.          sync
//   Bc: rows j: the closed-form gradient's backward in one butterfly (with the forward's row
//       statistics, Record::stat): dZ (in dG's tile), dV, dK += dr, dgamma, dlambda; warps 5-7:
//       deta, partial dtau, dtau_last; dq = dQ + dZbar W^T + dA K.                         sync
//   Bd: dk = dK + dZ W^T + dA^T Q; dW += Q^T dZbar + K^T dZ (one accumulation per tile), db +=
//       column sums (the caller synchronizes).
// The scan, the checkpoints, the remat groups, the cache slots in the workspace (plus 4 row
// statistics, Record) and the (batch, head) partial sums of dgamma, dlambda, dtau, dtau_last are
// InnerLoop.cu's; the per-step prefetch (cp.async into the other buffer set) too.
//
// Accuracy: an fp64 emulation of the operand rounding on the kernel-check inputs gave about
// 6e-4 relative by norm on every output with TF32-truncated operands (5e-4 rounded to nearest,
// 3.5e-3 with all operands in bf16), inside the bf16 bound 1e-2. On the H200 (kernel-check .tc
// cases) the worst is 2.1e-3, on dtau_last (a sum over every position with cancellation; its
// error moves between 1.2e-3 and 2.1e-3 with the order of the row sums), the other outputs below
// 1e-3.
#include "runtime/backend/cuda/Kernels.h"

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ttt::cuda {
namespace {
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMB = 16;  // mini-batch rows (one m16 tile)
constexpr int kLda = 20; // row stride of [16, 16] tiles

int roundUp4(int x) { return (x + 3) / 4 * 4; }

// Dynamic shared memory, in floats from its start.
struct Layout {
  int F = 0, ldx = 0, ldw = 0;
  int set[2] = {0, 0}; // K [16, ldx], Q [16, ldx] (adjacent: [K; Q] is one 32-row tile),
  int setK = 0, setQ = 0, setG = 0, setA = 0, setEta = 0; // G [16, ldx], A [16, kLda], eta [16],
  int setSt = 0;                                          // row statistics [16, 4] (Record::stat)
  int W[2] = {0, 0}; // [F, ldw]: the state (forward, recompute) or W_t (backward walk)
  int dW = -1;       // [F, ldw] (backward)
  int bias = 0, db = -1, tau = 0;
  int T[5] = {-1, -1, -1, -1, -1}; // [16, ldx] work tiles (3 forward, 5 backward)
  int Cm = 0;                      // [16, kLda]
  int dA = -1, dE = -1, dEl = -1;  // backward
  int total = 0;
};

Layout makeLayout(int F, bool backward) {
  Layout L;
  L.F = F;
  L.ldx = F + 4;
  L.ldw = F + 8;
  const int tile = kMB * L.ldx, mat = F * L.ldw, small = kMB * kLda;
  L.setK = 0;
  L.setQ = tile;
  L.setG = 2 * tile;
  L.setA = 3 * tile;
  L.setEta = L.setA + small;
  L.setSt = L.setEta + kMB;
  const int setFloats = L.setSt + 4 * kMB;
  int at = 0;
  auto take = [&](int floats) {
    const int r = at;
    at += roundUp4(floats);
    return r;
  };
  for (int s = 0; s < 2; ++s)
    L.set[s] = take(setFloats);
  for (int s = 0; s < (backward ? 2 : 1); ++s)
    L.W[s] = take(mat);
  L.bias = take(F);
  L.tau = take(kMB);
  for (int i = 0; i < (backward ? 5 : 3); ++i)
    L.T[i] = take(tile);
  L.Cm = take(small);
  if (backward) {
    L.dW = take(mat);
    L.db = take(F);
    L.dA = take(small);
    L.dE = take(small);
    L.dEl = take(kMB);
  }
  L.total = at;
  return L;
}

// What the backward reads of a step of the forward (InnerLoop.cu's cache and more): G, zhat, xhat
// [b, f], A [b, b], 1/sigma of LN(z) and of LN(Zbar) [b], and per row of the closed-form gradient
// [b, 4]: mean(g), mean(g zhat), sum(gamma^2 zhat), sum(gamma^2 zhat^2) (g = r gamma), which let
// its backward take one butterfly instead of four; r = gamma zhat + lambda - (v - k) is recomputed
// there. With the plan's inner-loop cache (Kernels.h) the forward writes this record for every
// step and the backward only re-runs the W chain of a group (W -= K^T (eta G) from the cached G);
// without it the backward recomputes each group's forward into its workspace slots, one per step
// of a group: W_t [f, f], then the record.
struct Record {
  int64_t G, zhat, xhat, A, rstd, rstdL, stat, floats;
};
__host__ __device__ constexpr Record recordOf(int b, int f) {
  return {0,
          int64_t(b) * f,
          2 * int64_t(b) * f,
          3 * int64_t(b) * f,
          3 * int64_t(b) * f + b * b,
          3 * int64_t(b) * f + b * b + b,
          3 * int64_t(b) * f + b * b + 2 * b,
          3 * int64_t(b) * f + b * b + 6 * b};
}
static_assert(recordOf(16, 64).floats % 4 == 0 && recordOf(16, 96).floats % 4 == 0,
              "records stay 16-byte aligned");
__host__ __device__ int64_t slotFloats(int b, int f) {
  return int64_t(f) * f + recordOf(b, f).floats;
}
// Per block: dgamma [f], dlambda [f], dtau [b], dtau_last (doubles).
__host__ __device__ int64_t partialDoubles(int b, int f) { return 2 * int64_t(f) + b + 1; }

struct Args {
  int n = 0, batch = 0, heads = 0, group = 1;
  float eps = 0;
  // Token t of mini-batch m of (batch bi, head hi) in eta, deta: m eM + bi eB + hi eH + t eT; in
  // q, k, v, o and their cotangents m tM + bi tB + hi tH + t tT, F times those (either
  // InnerLoopShape layout, same arithmetic). Used by the token-major kernels.
  int64_t eM = 0, eB = 0, eH = 0, tM = 0, tB = 0, tH = 0;
  int eT = 1, tT = 0;
  Layout L;
  const float *q = nullptr, *k = nullptr, *v = nullptr, *eta = nullptr, *tau = nullptr,
              *tauLast = nullptr, *gamma = nullptr, *lambda = nullptr;
  const float *W0 = nullptr, *b0 = nullptr;
  float *Wfinal = nullptr, *bfinal = nullptr, *o = nullptr, *ckptWOut = nullptr,
        *ckptBOut = nullptr;
  const float *ckptW = nullptr, *ckptB = nullptr, *dWfinal = nullptr, *dbfinal = nullptr,
              *dO = nullptr;
  float *dW0 = nullptr, *db0 = nullptr, *dq = nullptr, *dk = nullptr, *dv = nullptr,
        *deta = nullptr;
  double *partial = nullptr;
  float *slots = nullptr;
  float *cache = nullptr; // the plan's inner-loop cache [n, B, H, record], or null
};

#include "runtime/backend/cuda/AsyncCopy.cuh"
#include "runtime/backend/cuda/InnerLoopArgs.cuh"

// Shared rows of stride ld into contiguous global floats (plain stores).
__device__ void storeRows(float *dst, const float *src, int ld, int rows, int cols) {
  const bool vec = (cols % 4 == 0) && (ld % 4 == 0) && (reinterpret_cast<uintptr_t>(dst) % 16 == 0);
  if (vec) {
    const int per = cols / 4;
    for (int i = threadIdx.x; i < rows * per; i += kThreads) {
      const int r = i / per, c = i - r * per;
      *reinterpret_cast<float4 *>(dst + 4 * int64_t(i)) =
          *reinterpret_cast<const float4 *>(src + r * ld + 4 * c);
    }
  } else {
    for (int i = threadIdx.x; i < rows * cols; i += kThreads) {
      const int r = i / cols, c = i - r * cols;
      dst[i] = src[r * ld + c];
    }
  }
}

// Sums over each half warp (lanes 0-15, 16-31: one row each), every lane of a half the same bits.
__device__ __forceinline__ float halfSum(float x) {
#pragma unroll
  for (int m = 8; m > 0; m >>= 1)
    x += __shfl_xor_sync(0xffffffffu, x, m);
  return x;
}
template <int N> __device__ __forceinline__ void halfSumN(float (&v)[N]) {
#pragma unroll
  for (int m = 8; m > 0; m >>= 1)
#pragma unroll
    for (int i = 0; i < N; ++i)
      v[i] += __shfl_xor_sync(0xffffffffu, v[i], m);
}
// N consecutive floats (p aligned to V floats) in V-wide accesses, V = 4, 2 or 1 as N and the
// caller's alignment A allow.
template <int A, int N> __device__ __forceinline__ void vload(const float *p, float (&v)[N]) {
  constexpr int V = (N % 4 == 0 && A >= 4) ? 4 : (N % 2 == 0 && A >= 2) ? 2 : 1;
#pragma unroll
  for (int i = 0; i < N; i += V) {
    if constexpr (V == 4) {
      const float4 t = *reinterpret_cast<const float4 *>(p + i);
      v[i] = t.x, v[i + 1] = t.y, v[i + 2] = t.z, v[i + 3] = t.w;
    } else if constexpr (V == 2) {
      const float2 t = *reinterpret_cast<const float2 *>(p + i);
      v[i] = t.x, v[i + 1] = t.y;
    } else {
      v[i] = p[i];
    }
  }
}
template <int A, int N> __device__ __forceinline__ void vstore(float *p, const float (&v)[N]) {
  constexpr int V = (N % 4 == 0 && A >= 4) ? 4 : (N % 2 == 0 && A >= 2) ? 2 : 1;
#pragma unroll
  for (int i = 0; i < N; i += V) {
    if constexpr (V == 4)
      *reinterpret_cast<float4 *>(p + i) = make_float4(v[i], v[i + 1], v[i + 2], v[i + 3]);
    else if constexpr (V == 2)
      *reinterpret_cast<float2 *>(p + i) = make_float2(v[i], v[i + 1]);
    else
      p[i] = v[i];
  }
}

// --- mma.sync m16n8k8 TF32
// ------------------------------------------------------------------------ Operands go to the
// tensor cores as their fp32 bits: the unit reads the TF32 part and ignores the low 13 mantissa
// bits (round toward zero). No conversion instructions; the error stays about 6e-4 relative by norm
// (the fp64 emulation above, with truncation).
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// The 3xTF32 split: x = hi + lo exactly, hi = x's TF32 part (kept in x), lo = the rest.
template <int N> __device__ __forceinline__ void splitTf32(uint32_t (&x)[N], uint32_t (&lo)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const uint32_t hi = x[i] & 0xffffe000u;
    lo[i] = __float_as_uint(__uint_as_float(x[i]) - __uint_as_float(hi));
    x[i] = hi;
  }
}
// ldmatrix on 32-bit words: an 8 x 8 b16 matrix is an 8 x 4 block of TF32 words, and lane l gets
// word l % 4 of row l / 4, which is the mma fragment layout (row g, column t). Volatile: it keeps
// its place between the barriers around the tile it reads (no memory clobber, so that the plain
// fragment loads beside it can be scheduled freely; no phase writes a tile it reads this way).
__device__ __forceinline__ void ldsm4(uint32_t (&r)[4], const float *p) {
  const unsigned a = unsigned(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ void ldsm2(uint32_t (&r)[2], const float *p) {
  const unsigned a = unsigned(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(a));
}

// A matrix in shared memory, element (r, c) at p[r RS + c CS]: CS = 1 row-major, RS = 1 the
// transpose of a row-major one. Fragments whose 4 words run along a row (A row-major, B stored
// [n][k]) load with ldmatrix (row addresses 16-byte aligned: strides and offsets are multiples of
// 4 floats); the others word by word.
template <int RS, int CS> struct View {
  const float *p;
  __device__ __forceinline__ uint32_t w(int r, int c) const {
    return __float_as_uint(p[r * RS + c * CS]);
  }
  // A fragment of the 16 x 8 block at (m0, k0): (g, t), (g + 8, t), (g, t + 4), (g + 8, t + 4).
  __device__ __forceinline__ void a(uint32_t (&f)[4], int m0, int k0, int lane) const {
    if constexpr (CS == 1) {
      const int mi = lane >> 3;
      ldsm4(f, p + (m0 + (lane & 7) + (mi & 1) * 8) * RS + k0 + (mi >> 1) * 4);
    } else {
      const int g = lane >> 2, t = lane & 3;
      f[0] = w(m0 + g, k0 + t);
      f[1] = w(m0 + g + 8, k0 + t);
      f[2] = w(m0 + g, k0 + t + 4);
      f[3] = w(m0 + g + 8, k0 + t + 4);
    }
  }
  // B fragment of the 8 x 8 block at (k0, n0): (t, g), (t + 4, g).
  __device__ __forceinline__ void b(uint32_t (&f)[2], int k0, int n0, int lane) const {
    if constexpr (RS == 1) {
      ldsm2(f, p + (n0 + (lane & 7)) * CS + k0 + ((lane >> 3) & 1) * 4);
    } else {
      const int g = lane >> 2, t = lane & 3;
      f[0] = w(k0 + t, n0 + g);
      f[1] = w(k0 + t + 4, n0 + g);
    }
  }
};

// d[u] += A[m0[u] : +16, 0 : K] B[0 : K, n0[u] : +8] for U tiles, k outermost (U independent
// chains). SPLIT: x = hi + lo with hi the TF32 part, three products hi hi + hi lo + lo hi (about
// fp32 accuracy).
// A lone long chain (U = 1, K >= 32) runs as two, even and odd k steps, added at the end.
template <int K, int U, bool SPLIT, class VA, class VB>
__device__ __forceinline__ void mmaTiles(float (&d)[U][4], VA A, VB B, const int (&m0)[U],
                                         const int (&n0)[U], int lane) {
  if constexpr (U == 1 && K >= 32 && !SPLIT) {
    constexpr int C = 2;
    float e[C][4] = {};
#pragma unroll
    for (int k = 0; k < K; k += 8 * C) {
#pragma unroll
      for (int c = 0; c < C; ++c) {
        uint32_t a[4], b[2];
        A.a(a, m0[0], k + 8 * c, lane);
        B.b(b, k + 8 * c, n0[0], lane);
        mma(e[c], a, b);
      }
    }
#pragma unroll
    for (int v = 0; v < 4; ++v)
      d[0][v] += e[0][v] + e[1][v];
  } else {
#pragma unroll
    for (int k = 0; k < K; k += 8) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        uint32_t a[4], b[2];
        A.a(a, m0[u], k, lane);
        B.b(b, k, n0[u], lane);
        if (SPLIT) {
          uint32_t al[4], bl[2];
          splitTf32(a, al);
          splitTf32(b, bl);
          mma(d[u], al, b);
          mma(d[u], a, bl);
        }
        mma(d[u], a, b);
      }
    }
  }
}

// d[u] += A[m0 : +16, 0 : K] B[0 : K, n0 + 8 u : +8] for U tiles of one row block: the A
// fragment (and its split) loaded once per k step for all U chains; per tile the same products in
// the same order as mmaTiles.
template <int K, int U, bool SPLIT, class VA, class VB>
__device__ __forceinline__ void mmaRow(float (&d)[U][4], VA A, VB B, int m0, int n0, int lane) {
#pragma unroll
  for (int k = 0; k < K; k += 8) {
    uint32_t a[4], al[4];
    A.a(a, m0, k, lane);
    if (SPLIT) {
      splitTf32(a, al);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      uint32_t b[2];
      B.b(b, k, n0 + 8 * u, lane);
      if (SPLIT) {
        uint32_t bl[2];
        splitTf32(b, bl);
        mma(d[u], al, b);
        mma(d[u], a, bl);
      }
      mma(d[u], a, b);
    }
  }
}

// Tiles per warp of an [F, F] product (W, dW updates), and how many run as independent chains.
template <int F> __host__ __device__ constexpr int matTilesPerWarp() {
  return (F / 16) * (F / 8) / kWarps;
}
template <int F> __host__ __device__ constexpr int matChains() {
  constexpr int per = matTilesPerWarp<F>();
  return per % 4 == 0 ? 4 : per % 3 == 0 ? 3 : per % 2 == 0 ? 2 : 1;
}
// This warp's share of an [F, F] product: d = A^T-style tiles (rows 16 (u / NT), columns
// 8 (u % NT)), epilogue epi(m0, n0, d) per tile.
template <int F, bool SPLIT, class VA, class VB, class Epi>
__device__ __forceinline__ void matProduct(int warp, int lane, VA A, VB B, Epi epi) {
  constexpr int NT = F / 8, per = matTilesPerWarp<F>(), U = matChains<F>();
  static_assert(per * kWarps == (F / 16) * NT, "whole tiles per warp");
  static_assert(NT % U == 0 && per % U == 0, "a chunk of U tiles stays in one row block");
  for (int u0 = warp * per; u0 < (warp + 1) * per; u0 += U) {
    float d[U][4] = {};
    const int m0 = 16 * (u0 / NT), n0 = 8 * (u0 % NT);
    mmaRow<kMB, U, SPLIT>(d, A, B, m0, n0, lane);
#pragma unroll
    for (int u = 0; u < U; ++u)
      epi(m0, n0 + 8 * u, d[u]);
  }
}

// The same for A B + C D (plain TF32), one epilogue.
template <int F, class VA, class VB, class VC, class VD, class Epi>
__device__ __forceinline__ void matProduct2(int warp, int lane, VA A, VB B, VC C, VD D, Epi epi) {
  constexpr int NT = F / 8, per = matTilesPerWarp<F>(), U = matChains<F>();
  for (int u0 = warp * per; u0 < (warp + 1) * per; u0 += U) {
    float d[U][4] = {};
    const int m0 = 16 * (u0 / NT), n0 = 8 * (u0 % NT);
    mmaRow<kMB, U, false>(d, A, B, m0, n0, lane);
    mmaRow<kMB, U, false>(d, C, D, m0, n0, lane);
#pragma unroll
    for (int u = 0; u < U; ++u)
      epi(m0, n0 + 8 * u, d[u]);
  }
}

// One block's view of its (batch, head) and of the shared memory.
template <int F, bool TM> struct Ctx {
  static constexpr int LDX = F + 4, LDW = F + 8, CPL = F / 16, NT = F / 8, RW = 1;
  const Args &a;
  float *sm;
  int tid, lane, warp, g, t4, bh, bi, hi;
  float tauLast, invF;
  float gamma[CPL], lambda[CPL];

  __device__ Ctx(const Args &args, float *smem) : a(args), sm(smem) {
    tid = threadIdx.x;
    lane = tid & 31;
    warp = tid >> 5;
    g = lane >> 2;
    t4 = lane & 3;
    bh = blockIdx.x;
    bi = bh / a.heads;
    hi = bh - bi * a.heads;
    tauLast = *a.tauLast;
    invF = 1.0f / float(F);
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      gamma[c] = a.gamma[int64_t(hi) * F + col(c)];
      lambda[c] = a.lambda[int64_t(hi) * F + col(c)];
    }
  }
  // Row work: half warp h of warp w owns row w + 8 h, its lane l the columns CPL l .. + CPL - 1.
  __device__ int col(int c) const { return CPL * (lane & 15) + c; }
  __device__ int row(int) const { return warp + kWarps * (lane >> 4); }
  __device__ bool rowLead() const { return (lane & 15) == 0; }
  __device__ float *K(int s) const { return sm + a.L.set[s] + a.L.setK; }
  __device__ float *Q(int s) const { return sm + a.L.set[s] + a.L.setQ; }
  __device__ float *G(int s) const { return sm + a.L.set[s] + a.L.setG; }
  __device__ float *A(int s) const { return sm + a.L.set[s] + a.L.setA; }
  __device__ float *eta(int s) const { return sm + a.L.set[s] + a.L.setEta; }
  __device__ float *St(int s) const { return sm + a.L.set[s] + a.L.setSt; }
  __device__ float *W(int s) const { return sm + a.L.W[s]; }
  __device__ float *T(int i) const { return sm + a.L.T[i]; }
  __device__ float *bias() const { return sm + a.L.bias; }
  __device__ float *tau() const { return sm + a.L.tau; }
  __device__ float *Cm() const { return sm + a.L.Cm; }
  __device__ float *dW() const { return sm + a.L.dW; }
  __device__ float *db() const { return sm + a.L.db; }
  __device__ float *dA() const { return sm + a.L.dA; }
  __device__ float *dE() const { return sm + a.L.dE; }
  __device__ float *dEl() const { return sm + a.L.dEl; }

  // Token 0 of mini-batch m of this (batch, head) in q, k, v, o and their cotangents, the stride
  // of their token rows, and the same in eta, deta: mini-batch major with compile-time strides
  // (the code of the one-layout kernels), token major (TM) through Args' strides.
  __device__ int64_t tileRow(int m) const { return (int64_t(m) * a.batch + bi) * a.heads + hi; }
  __device__ int64_t tileAt(int m) const {
    return TM ? m * a.tM + bi * a.tB + hi * a.tH : tileRow(m) * kMB * F;
  }
  __device__ int ld() const { return TM ? a.tT : F; }
  __device__ int64_t etaAt(int m) const {
    return TM ? m * a.eM + bi * a.eB + hi * a.eH : tileRow(m) * kMB;
  }
  __device__ int etaLd() const { return TM ? a.eT : 1; }
  __device__ void loadInputs(int m, int s) const {
    const int64_t at = tileAt(m);
    if (TM) {
      copyRowsStrided(K(s), LDX, a.k + at, ld(), kMB, F);
      copyRowsStrided(Q(s), LDX, a.q + at, ld(), kMB, F);
    } else {
      copyRows(K(s), LDX, a.k + at, kMB, F);
      copyRows(Q(s), LDX, a.q + at, kMB, F);
    }
    if (tid < kMB)
      cpAsync4(eta(s) + tid, a.eta + etaAt(m) + tid * etaLd());
  }
  __device__ void loadMatrix(float *dst, const float *src) const { copyRows(dst, LDW, src, F, F); }
  __device__ void storeMatrix(float *dst, const float *src) const {
    storeRows(dst, src, LDW, F, F);
  }
  // The workspace slot of step t of a group (W_t first), and the record of step m (t of its
  // group): in the cache when the plan has one, else after W_t in the slot.
  __device__ float *slot(int t) const {
    return a.slots + (int64_t(bh) * a.group + t) * slotFloats(kMB, F);
  }
  __device__ float *record(int m, int t) const {
    return a.cache ? a.cache + (int64_t(m) * a.batch * a.heads + bh) * recordOf(kMB, F).floats
                   : slot(t) + F * F;
  }
  // G, A and the row statistics of step m (t of its group) into set s (cp.async).
  __device__ void loadRecord(int m, int t, int s) const {
    const Record rc = recordOf(kMB, F);
    const float *r = record(m, t);
    copyRows(G(s), LDX, r + rc.G, kMB, F);
    copyRows(A(s), kLda, r + rc.A, kMB, kMB);
    copyRows(St(s), 4, r + rc.stat, kMB, 4);
  }
  // The C fragment of a tile at (m0, n0): rows m0 + g (+ 8 for values 2, 3), columns n0 + 2 t4
  // (+ 1 for values 1, 3).
  __device__ int fr(int m0, int v) const { return m0 + g + (v >> 1) * 8; }
  __device__ int fc(int n0, int v) const { return n0 + 2 * t4 + (v & 1); }
};

// Two adjacent floats (a C fragment's values 2 h, 2 h + 1; even offsets) as one 8-byte access.
__device__ __forceinline__ float2 &at2(float *p, int i) {
  return *reinterpret_cast<float2 *>(p + i);
}

// Mean and 1/sigma of a row held as CPL values per lane: one butterfly for the sum and the sum of
// squares (fp32; LayerNorm inputs here have |mean| of the order of the deviation, so E[z^2] -
// mean^2 loses no more than a few bits).
template <int F, bool TM>
__device__ __forceinline__ void rowStats(const Ctx<F, TM> &x, const float (&z)[F / 16],
                                         float &mean, float &rstd) {
  float s[2] = {0.0f, 0.0f};
#pragma unroll
  for (int c = 0; c < F / 16; ++c) {
    s[0] += z[c];
    s[1] = fmaf(z[c], z[c], s[1]);
  }
  halfSumN(s);
  const float q = s[1];
  mean = s[0] * x.invF;
  rstd = rsqrtf(fmaxf(q * x.invF - mean * mean, 0.0f) + x.a.eps);
}

// The state update W -= K^T EG of set s (EG in T(2)), the last part of forwardStep and of
// chainStep: one helper, so that both are the same instructions in the same order.
template <int F, bool TM> __device__ __forceinline__ void subtractKtEG(const Ctx<F, TM> &x, int s) {
  using C = Ctx<F, TM>;
  constexpr int LDX = C::LDX, LDW = C::LDW;
  float *W = x.W(0);
  matProduct<F, true>(x.warp, x.lane, View<1, LDX>{x.K(s)}, View<LDX, 1>{x.T(2)},
                      [&](int m0, int n0, const float(&d)[4]) {
#pragma unroll
                        for (int v = 0; v < 4; v += 2) {
                          float2 &w = at2(W, x.fr(m0, v) * LDW + x.fc(n0, v));
                          w = make_float2(w.x - d[v], w.y - d[v + 1]);
                        }
                      });
}

// One mini-batch of the scan from the state in W(0), bias(), inputs in set s. update: step the
// state in place. out: o's tile (token rows Ctx::ld() apart; or null); rec: the step's Record (or
// null). Does not end with a barrier: the caller synchronizes before anything reads QB or writes
// the tiles again.
template <int F, bool TM>
__device__ void forwardStep(const Ctx<F, TM> &x, int s, int m, bool update, float *out,
                            float *rec) {
  using C = Ctx<F, TM>;
  constexpr int LDX = C::LDX, LDW = C::LDW, CPL = C::CPL, NT = C::NT, RW = C::RW;
  const int lane = x.lane, warp = x.warp;
  const Record sl = recordOf(kMB, F);
  float *W = x.W(0), *bias = x.bias(), *Ks = x.K(s), *Qs = x.Q(s), *Gs = x.G(s), *As = x.A(s),
        *etas = x.eta(s), *taus = x.tau(), *Z = x.T(0), *QB = x.T(1), *EG = x.T(2), *Cm = x.Cm();
  const int64_t row0 = x.tileAt(m);

  float vr[RW][CPL];
#pragma unroll
  for (int r = 0; r < RW; ++r)
    vload<2>(x.a.v + row0 + int64_t(x.row(r)) * x.ld() + x.col(0), vr[r]);

  // ---- F1 ---- [K; Q] W + b; A = Q K^T on the warps with one product tile fewer.
  for (int nt = warp; nt < NT; nt += kWarps) {
    float d[2][4] = {};
    const int m0[2] = {0, kMB}, n0[2] = {8 * nt, 8 * nt};
    mmaTiles<F, 2, false>(d, View<LDX, 1>{Ks}, View<LDW, 1>{W}, m0, n0, lane);
    const float2 bc = at2(bias, x.fc(8 * nt, 0));
#pragma unroll
    for (int v = 0; v < 4; v += 2) {
      const int r = x.fr(0, v), c = x.fc(8 * nt, v);
      at2(Z, r * LDX + c) = make_float2(d[0][v] + bc.x, d[0][v + 1] + bc.y);
      at2(QB, r * LDX + c) = make_float2(d[1][v] + bc.x, d[1][v + 1] + bc.y);
    }
  }
  {
    const int j = (warp - NT % kWarps + kWarps) % kWarps; // score tile j (columns 8 j ..)
    if (j < 2) {
      float d[1][4] = {};
      const int m0[1] = {0}, n0[1] = {8 * j};
      mmaTiles<F, 1, false>(d, View<LDX, 1>{Qs}, View<1, LDX>{Ks}, m0, n0, lane);
#pragma unroll
      for (int v = 0; v < 4; v += 2) {
        const int i = x.fr(0, v), jj = x.fc(8 * j, v);
        const float2 aij = make_float2(jj <= i ? d[0][v] : 0.0f, jj + 1 <= i ? d[0][v + 1] : 0.0f);
        at2(As, i * kLda + jj) = aij;
        if (rec)
          at2(rec, sl.A + i * kMB + jj) = aij;
      }
    }
  }
  __syncthreads();

  // ---- F2 ---- rows j: z -> LN -> G (spec 2.4, closed form as InnerLoop.cpp), EG = el_j G_j.
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    float z[CPL], kr[CPL], mean, rstd;
    vload<4>(Z + j * LDX + x.col(0), z);
    vload<4>(Ks + j * LDX + x.col(0), kr);
    rowStats(x, z, mean, rstd);
    float zh[CPL], rr[CPL], gg[CPL], st[4] = {};
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      zh[c] = (z[c] - mean) * rstd;
      rr[c] = x.gamma[c] * zh[c] + x.lambda[c] - (vr[r][c] - kr[c]);
      gg[c] = rr[c] * x.gamma[c];
      st[0] += gg[c];
      st[1] = fmaf(gg[c], zh[c], st[1]);
      const float g2z = x.gamma[c] * x.gamma[c] * zh[c];
      st[2] += g2z;
      st[3] = fmaf(g2z, zh[c], st[3]);
    }
    if (rec) {
      halfSumN(st);
    } else {
      float st2[2] = {st[0], st[1]};
      halfSumN(st2);
      st[0] = st2[0];
      st[1] = st2[1];
    }
    const float m1 = st[0] * x.invF, m2 = st[1] * x.invF, el = x.tauLast * etas[j];
    float gv[CPL], eg[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      gv[c] = (gg[c] - m1 - zh[c] * m2) * rstd;
      eg[c] = el * gv[c];
    }
    vstore<4>(Gs + j * LDX + x.col(0), gv);
    vstore<4>(EG + j * LDX + x.col(0), eg);
    if (rec) {
      const int e = j * F + x.col(0);
      vstore<4>(rec + sl.G + e, gv);
      vstore<4>(rec + sl.zhat + e, zh);
    }
    if (rec && x.rowLead()) {
      rec[sl.rstd + j] = rstd;
      const float4 v = make_float4(m1, m2, st[2], st[3]);
      *reinterpret_cast<float4 *>(rec + sl.stat + 4 * j) = v;
      *reinterpret_cast<float4 *>(x.St(s) + 4 * j) = v; // for the walk's first step
    }
  }
  {
    const int i = x.tid >> 4, j = x.tid & 15;
    Cm[i * kLda + j] = j <= i ? taus[i] * etas[j] * (As[i * kLda + j] + 1.0f) : 0.0f;
  }
  __syncthreads();

  // ---- F3 ---- Zbar = QB - Cm G; b -= sum_j EG_j.
  for (int nt = warp; nt < NT; nt += kWarps) {
    float d[1][4] = {};
    const int m0[1] = {0}, n0[1] = {8 * nt};
    mmaTiles<kMB, 1, false>(d, View<kLda, 1>{Cm}, View<LDX, 1>{Gs}, m0, n0, lane);
#pragma unroll
    for (int v = 0; v < 4; v += 2) {
      const int r = x.fr(0, v), c = x.fc(8 * nt, v);
      float2 &q = at2(QB, r * LDX + c);
      q = make_float2(q.x - d[0][v], q.y - d[0][v + 1]);
    }
  }
  if (update && x.tid >= 256 - F) {
    const int e = x.tid - (256 - F);
    float d = 0.0f;
    for (int j = 0; j < kMB; ++j)
      d += EG[j * LDX + e];
    bias[e] -= d;
  }
  __syncthreads();

  // ---- F4 ---- rows i: out_i = q_i + gamma LN(Zbar_i) + lambda; W -= K^T EG (split, so the
  // state's update keeps about fp32 accuracy; here rather than in F3 to overlap the row work).
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int i = x.row(r);
    float zb[CPL], mean, rstd;
    vload<4>(QB + i * LDX + x.col(0), zb);
    rowStats(x, zb, mean, rstd);
    float xh[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      xh[c] = (zb[c] - mean) * rstd;
    if (out) {
      float o[CPL];
      vload<4>(Qs + i * LDX + x.col(0), o);
#pragma unroll
      for (int c = 0; c < CPL; ++c)
        o[c] += x.gamma[c] * xh[c] + x.lambda[c];
      vstore<2>(out + i * x.ld() + x.col(0), o);
    }
    if (rec)
      vstore<4>(rec + sl.xhat + i * F + x.col(0), xh);
    if (rec && x.rowLead())
      rec[sl.rstdL + i] = rstd;
  }
  if (update)
    subtractKtEG(x, s);
}

// The state update of forwardStep alone, from the cached G in set s: EG = el G (F2's row
// scaling), then W -= K^T EG (F4's product), the same operations in the same order, so W_t is
// bit for bit the forward's. Ends like forwardStep (the caller synchronizes).
template <int F, bool TM> __device__ void chainStep(const Ctx<F, TM> &x, int s) {
  using C = Ctx<F, TM>;
  constexpr int LDX = C::LDX, CPL = C::CPL, RW = C::RW;
  float *EG = x.T(2);
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    float gv[CPL], eg[CPL];
    vload<4>(x.G(s) + j * LDX + x.col(0), gv);
    const float el = x.tauLast * x.eta(s)[j];
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      eg[c] = el * gv[c];
    vstore<4>(EG + j * LDX + x.col(0), eg);
  }
  __syncthreads();
  subtractKtEG(x, s);
}

template <int F, bool TM> __device__ void initShared(const Ctx<F, TM> &x) {
  for (int i = x.tid; i < x.a.L.total; i += kThreads)
    x.sm[i] = 0.0f;
  __syncthreads();
  if (x.tid < kMB)
    x.tau()[x.tid] = x.a.tau[x.tid];
}

// Two blocks per SM where the shared memory allows (the launcher checks).
template <int F> constexpr int minBlocksFwd() { return 2; }
template <int F> constexpr int minBlocksBwd() { return F <= 64 ? 2 : 1; }

template <int F, bool TM>
__global__ void __launch_bounds__(kThreads, minBlocksFwd<F>())
    tcForwardKernel(const __grid_constant__ Args a) {
  extern __shared__ __align__(16) float smem[];
  const Ctx<F, TM> x(a, smem);
  initShared(x);
  const int BH = a.batch * a.heads;
  x.loadMatrix(x.W(0), a.W0 + int64_t(x.bh) * F * F);
  if (x.tid < F)
    cpAsync4(x.bias() + x.tid, a.b0 + int64_t(x.bh) * F + x.tid);
  x.loadInputs(0, 0);
  cpAsyncCommit();
  for (int m = 0; m < a.n; ++m) {
    const int s = m & 1;
    // Step m's inputs are here and every thread is past step m - 1 (set s ^ 1 is free).
    cpAsyncWait<0>();
    __syncthreads();
    if (m + 1 < a.n)
      x.loadInputs(m + 1, s ^ 1);
    cpAsyncCommit();
    if (m % a.group == 0) {
      const int64_t g = m / a.group;
      x.storeMatrix(a.ckptWOut + (g * BH + x.bh) * F * F, x.W(0));
      if (x.tid < F)
        a.ckptBOut[(g * BH + x.bh) * F + x.tid] = x.bias()[x.tid];
    }
    forwardStep(x, s, m, true, a.o + x.tileAt(m), a.cache ? x.record(m, 0) : nullptr);
  }
  __syncthreads();
  x.storeMatrix(a.Wfinal + int64_t(x.bh) * F * F, x.W(0));
  if (x.tid < F)
    a.bfinal[int64_t(x.bh) * F + x.tid] = x.bias()[x.tid];
}

// The reverse of forwardStep for step t (mini-batch m) with W_t in W(ws), the inputs, G and A in
// set s; dW, db the cotangents of the step's output state, replaced by those of its input state.
template <int F, bool TM>
__device__ void backwardStep(const Ctx<F, TM> &x, int s, int ws, int m, int t,
                             float (&dgam)[F / 16], float (&dlam)[F / 16], float &dtauAcc,
                             float &dtauLastAcc, float sumG2) {
  using C = Ctx<F, TM>;
  constexpr int LDX = C::LDX, LDW = C::LDW, CPL = C::CPL, NT = C::NT, RW = C::RW;
  const int lane = x.lane, warp = x.warp;
  const Record sl = recordOf(kMB, F);
  const float *slot = x.record(m, t);
  float *W = x.W(ws), *dW = x.dW(), *db = x.db(), *Ks = x.K(s), *Qs = x.Q(s), *Gs = x.G(s),
        *As = x.A(s), *etas = x.eta(s), *taus = x.tau(), *dP = x.T(0), *dZbar = x.T(1),
        *dKp = x.T(2), *dQp = x.T(3), *dGZ = x.T(4), *Cm = x.Cm(), *dAs = x.dA(), *dEs = x.dE(),
        *dEls = x.dEl();
  const int64_t row0 = x.tileAt(m);

  // This thread's row values of dO and of the cache for Ba (those for Bc are read at Bb).
  float dO[RW][CPL], xh[RW][CPL], rstdL[RW];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    rstdL[r] = slot[sl.rstdL + j];
    vload<2>(x.a.dO + row0 + j * x.ld() + x.col(0), dO[r]);
    vload<4>(slot + sl.xhat + j * F + x.col(0), xh[r]);
  }

  // ---- Ba ---- dP = -(K dW' + db'), dKp = -el (G dW'^T): both tiles of a column block in one
  // straight run (independent chains).
  for (int nt = warp; nt < NT; nt += kWarps) {
    float dp[1][4] = {}, tg[1][4] = {};
    const int m0[1] = {0}, n0[1] = {8 * nt};
    mmaTiles<F, 1, false>(dp, View<LDX, 1>{Ks}, View<LDW, 1>{dW}, m0, n0, lane);
    mmaTiles<F, 1, false>(tg, View<LDX, 1>{Gs}, View<1, LDW>{dW}, m0, n0, lane);
    const float2 dbc = at2(db, x.fc(8 * nt, 0));
#pragma unroll
    for (int v = 0; v < 4; v += 2) {
      const int r = x.fr(0, v), c = x.fc(8 * nt, v);
      const float el = -(x.tauLast * etas[r]);
      at2(dP, r * LDX + c) = make_float2(-dp[0][v] - dbc.x, -dp[0][v + 1] - dbc.y);
      at2(dKp, r * LDX + c) = make_float2(el * tg[0][v], el * tg[0][v + 1]);
    }
  }
  // Rows i: out_i = q_i + gamma xhat_i + lambda -> dQ = dO, dgamma, dlambda, dZbar.
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int i = x.row(r);
    float mm[2] = {0.0f, 0.0f}, dln[CPL];
    vstore<4>(dQp + i * LDX + x.col(0), dO[r]);
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      dgam[c] = fmaf(dO[r][c], xh[r][c], dgam[c]);
      dlam[c] += dO[r][c];
      dln[c] = dO[r][c] * x.gamma[c];
      mm[0] += dln[c];
      mm[1] = fmaf(dln[c], xh[r][c], mm[1]);
    }
    halfSumN(mm);
    const float m1 = mm[0] * x.invF, m2 = mm[1] * x.invF;
    float dzb[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      dzb[c] = rstdL[r] * (dln[c] - m1 - xh[r][c] * m2);
    vstore<4>(dZbar + i * LDX + x.col(0), dzb);
  }
  {
    const int i = x.tid >> 4, j = x.tid & 15;
    Cm[i * kLda + j] = j <= i ? taus[i] * etas[j] * (As[i * kLda + j] + 1.0f) : 0.0f;
  }
  __syncthreads();

  // r as the forward computed it (F2), from zhat, v and k.
  float zh[RW][CPL], rr[RW][CPL], rstd[RW];
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    float vr[CPL], kr[CPL];
    rstd[r] = slot[sl.rstd + j];
    vload<4>(slot + sl.zhat + j * F + x.col(0), zh[r]);
    vload<2>(x.a.v + row0 + int64_t(j) * x.ld() + x.col(0), vr);
    vload<4>(Ks + j * LDX + x.col(0), kr);
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      rr[r][c] = x.gamma[c] * zh[r][c] + x.lambda[c] - (vr[c] - kr[c]);
  }

  // ---- Bb ---- dG = el dP - Cm^T dZbar; dC = -dZbar G^T -> dE, dA (on the warps with one dG
  // tile fewer).
  for (int nt = warp; nt < NT; nt += kWarps) {
    float d[1][4] = {};
    const int m0[1] = {0}, n0[1] = {8 * nt};
    mmaTiles<kMB, 1, false>(d, View<1, kLda>{Cm}, View<LDX, 1>{dZbar}, m0, n0, lane);
#pragma unroll
    for (int v = 0; v < 4; v += 2) {
      const int j = x.fr(0, v), c = x.fc(8 * nt, v);
      const float el = x.tauLast * etas[j];
      const float2 p = at2(dP, j * LDX + c);
      at2(dGZ, j * LDX + c) = make_float2(el * p.x - d[0][v], el * p.y - d[0][v + 1]);
    }
  }
  {
    const int jt = (warp - NT % kWarps + kWarps) % kWarps;
    if (jt < 2) {
      float d[1][4] = {};
      const int m0[1] = {0}, n0[1] = {8 * jt};
      mmaTiles<F, 1, false>(d, View<LDX, 1>{dZbar}, View<1, LDX>{Gs}, m0, n0, lane);
#pragma unroll
      for (int v = 0; v < 4; v += 2) {
        const int i = x.fr(0, v), j = x.fc(8 * jt, v);
        const float2 a2 = at2(As, i * kLda + j), e2 = at2(etas, j);
        const float ti = taus[i];
        float dE0 = 0.0f, dA0 = 0.0f, dE1 = 0.0f, dA1 = 0.0f;
        if (j <= i) {
          dE0 = -d[0][v] * (a2.x + 1.0f);
          dA0 = -d[0][v] * (ti * e2.x);
        }
        if (j + 1 <= i) {
          dE1 = -d[0][v + 1] * (a2.y + 1.0f);
          dA1 = -d[0][v + 1] * (ti * e2.y);
        }
        at2(dEs, i * kLda + j) = make_float2(dE0, dE1);
        at2(dAs, i * kLda + j) = make_float2(dA0, dA1);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    float sEl = 0.0f, pr[CPL], gr[CPL];
    vload<4>(dP + j * LDX + x.col(0), pr);
    vload<4>(Gs + j * LDX + x.col(0), gr);
#pragma unroll
    for (int c = 0; c < CPL; ++c)
      sEl = fmaf(pr[c], gr[c], sEl);
    sEl = halfSum(sEl);
    if (x.rowLead())
      dEls[j] = sEl;
  }
  __syncthreads();

  // ---- Bc ---- rows j: back through G_j = rstd (g - s1/f - zhat s2/f), g = r gamma,
  // r = gamma zhat + lambda - (v - k), zhat = (z - mean) rstd (InnerLoop.cpp's stepBackward,
  // regrouped): with du = rstd dG, the sums that the reference takes one after another (of dzh and
  // dzh zhat, dzh = -du s2 - mean(du zhat) g + gamma^2 (du - mean(du) - zhat mean(du zhat))) are
  // combinations of five sums over du and dG and of the forward's row statistics (Slot::stat),
  // so one butterfly does; mean(zhat) = 0 is used for mean(dz).
#pragma unroll
  for (int r = 0; r < RW; ++r) {
    const int j = x.row(r);
    const float4 stv = *reinterpret_cast<const float4 *>(x.St(s) + 4 * j);
    const float rs = rstd[r], sigma = 1.0f / rs, s1 = stv.x, s2 = stv.y, a1 = stv.z, a2 = stv.w;
    float dG[CPL], gg[CPL], p[5] = {};
    vload<4>(dGZ + j * LDX + x.col(0), dG);
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      gg[c] = rr[r][c] * x.gamma[c];
      const float uu = gg[c] - s1 - zh[r][c] * s2, du = rs * dG[c];
      const float g2du = x.gamma[c] * x.gamma[c] * du;
      p[0] = fmaf(dG[c], uu, p[0]);
      p[1] += du;
      p[2] = fmaf(du, zh[r][c], p[2]);
      p[3] += g2du;
      p[4] = fmaf(g2du, zh[r][c], p[4]);
    }
    halfSumN(p);
    const float mdu = p[1] * x.invF, mduz = p[2] * x.invF, f = float(F);
    const float sdzh = -s2 * p[1] - mduz * f * s1 + p[3] - mdu * sumG2 - mduz * a1;
    const float sdzhz = -s2 * p[2] - mduz * f * s2 + p[4] - mdu * a1 - mduz * a2;
    const float drstd = p[0] + sigma * sdzhz;
    const float dvar = -0.5f * drstd * rs * rs * rs;
    const float dzc = 2.0f * dvar * sigma * x.invF, mdz = rs * sdzh * x.invF;
    float kp[CPL], dvr[CPL], dz[CPL];
    vload<4>(dKp + j * LDX + x.col(0), kp);
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const float du = rs * dG[c];
      const float dg = du - mdu - zh[r][c] * mduz;
      const float dr = dg * x.gamma[c];
      dgam[c] += dg * rr[r][c] + dr * zh[r][c];
      dlam[c] += dr;
      const float dzh = -du * s2 - mduz * gg[c] + dr * x.gamma[c];
      kp[c] += dr;
      dvr[c] = -dr;
      dz[c] = dzh * rs + dzc * zh[r][c] - mdz;
    }
    vstore<4>(dKp + j * LDX + x.col(0), kp);
    vstore<2>(x.a.dv + row0 + j * x.ld() + x.col(0), dvr);
    vstore<4>(dGZ + j * LDX + x.col(0), dz);
  }
  // Positions, on warps 5-7 (the row owners' fixed-length sums unroll, the zero terms change no
  // bit): deta_j = sum_{i>=j} dE_ij tau_i + dEl_j tau_last; dtau_i += sum_{j<=i} dE_ij eta_j;
  // dtau_last += sum_j dEl_j eta_j.
  if (warp == kWarps - 3 && lane < kMB) {
    const int j = lane;
    float de = 0.0f;
#pragma unroll
    for (int i = 0; i < kMB; ++i)
      de = fmaf(i >= j ? dEs[i * kLda + j] : 0.0f, taus[i], de);
    de = fmaf(dEls[j], x.tauLast, de);
    x.a.deta[x.etaAt(m) + j * x.etaLd()] = de;
  } else if (warp == kWarps - 2 && lane < kMB) {
    const int i = lane;
    float dt = 0.0f;
#pragma unroll
    for (int jj = 0; jj < kMB; ++jj)
      dt = fmaf(jj <= i ? dEs[i * kLda + jj] : 0.0f, etas[jj], dt);
    dtauAcc += dt;
  } else if (warp == kWarps - 1 && lane == 0) {
    float dl = 0.0f;
#pragma unroll
    for (int jj = 0; jj < kMB; ++jj)
      dl = fmaf(dEls[jj], etas[jj], dl);
    dtauLastAcc += dl;
  }
  // Products that need no dZ (overlapping the row work): dq = dQp + dZbar W^T + dA K.
  for (int nt = warp; nt < NT; nt += kWarps) {
    float d[1][4] = {};
    const int m0[1] = {0}, n0[1] = {8 * nt};
    mmaTiles<F, 1, false>(d, View<LDX, 1>{dZbar}, View<1, LDW>{W}, m0, n0, lane);
    mmaTiles<kMB, 1, false>(d, View<kLda, 1>{dAs}, View<LDX, 1>{Ks}, m0, n0, lane);
#pragma unroll
    for (int v = 0; v < 4; v += 2) {
      const int r = x.fr(0, v), c = x.fc(8 * nt, v);
      const float2 p = at2(dQp, r * LDX + c);
      const float2 val = make_float2(p.x + d[0][v], p.y + d[0][v + 1]);
      *reinterpret_cast<float2 *>(x.a.dq + row0 + r * x.ld() + c) = val;
    }
  }
  __syncthreads();

  // ---- Bd ---- dk = dKp + dZ W^T + dA^T Q; dW += Q^T dZbar + K^T dZ; db += column sums of
  // dZbar and dZ.
  for (int nt = warp; nt < NT; nt += kWarps) {
    float d[1][4] = {};
    const int m0[1] = {0}, n0[1] = {8 * nt};
    mmaTiles<F, 1, false>(d, View<LDX, 1>{dGZ}, View<1, LDW>{W}, m0, n0, lane);
    mmaTiles<kMB, 1, false>(d, View<1, kLda>{dAs}, View<LDX, 1>{Qs}, m0, n0, lane);
#pragma unroll
    for (int v = 0; v < 4; v += 2) {
      const int r = x.fr(0, v), c = x.fc(8 * nt, v);
      const float2 p = at2(dKp, r * LDX + c);
      const float2 val = make_float2(p.x + d[0][v], p.y + d[0][v + 1]);
      *reinterpret_cast<float2 *>(x.a.dk + row0 + r * x.ld() + c) = val;
    }
  }
  matProduct2<F>(warp, lane, View<1, LDX>{Qs}, View<LDX, 1>{dZbar}, View<1, LDX>{Ks},
                 View<LDX, 1>{dGZ}, [&](int m0, int n0, const float(&d)[4]) {
#pragma unroll
                   for (int v = 0; v < 4; v += 2) {
                     float2 &w = at2(dW, x.fr(m0, v) * LDW + x.fc(n0, v));
                     w = make_float2(w.x + d[v], w.y + d[v + 1]);
                   }
                 });
  if (x.tid >= 256 - F) {
    const int e = x.tid - (256 - F);
    float d = 0.0f;
    for (int i = 0; i < kMB; ++i)
      d += dZbar[i * LDX + e];
    for (int j = 0; j < kMB; ++j)
      d += dGZ[j * LDX + e];
    db[e] += d;
  }
}

template <int F, bool TM>
__global__ void __launch_bounds__(kThreads, minBlocksBwd<F>())
    tcBackwardKernel(const __grid_constant__ Args a) {
  extern __shared__ __align__(16) float smem[];
  const Ctx<F, TM> x(a, smem);
  using C = Ctx<F, TM>;
  initShared(x);
  const int K = a.group, BH = a.batch * a.heads;
  for (int i = x.tid; i < F * F; i += kThreads) {
    const int r = i / F, c = i - r * F;
    x.dW()[r * C::LDW + c] = a.dWfinal[int64_t(x.bh) * F * F + i];
  }
  if (x.tid < F)
    x.db()[x.tid] = a.dbfinal[int64_t(x.bh) * F + x.tid];
  float dgam[C::CPL], dlam[C::CPL], dtauAcc = 0.0f, dtauLastAcc = 0.0f, sumG2 = 0.0f;
#pragma unroll
  for (int c = 0; c < C::CPL; ++c)
    sumG2 = fmaf(x.gamma[c], x.gamma[c], sumG2);
  sumG2 = halfSum(sumG2); // sum of gamma^2 over the head's features
#pragma unroll
  for (int c = 0; c < C::CPL; ++c)
    dgam[c] = dlam[c] = 0.0f;

  for (int g = a.n / K - 1; g >= 0; --g) {
    // The group's states W_0 .. W_{K-1} (W_t into slot t for 0 < t < K-1; W_{K-1} stays in
    // W(0)), and each step's record: from the cache (only the W chain runs), or recomputed.
    const float *ckW = a.ckptW + (int64_t(g) * BH + x.bh) * F * F;
    x.loadMatrix(x.W(0), ckW);
    if (!a.cache && x.tid < F)
      cpAsync4(x.bias() + x.tid, a.ckptB + (int64_t(g) * BH + x.bh) * F + x.tid);
    x.loadInputs(g * K, 0);
    if (a.cache)
      x.loadRecord(g * K, 0, 0);
    cpAsyncCommit();
    for (int t = 0; t < K; ++t) {
      const int m = g * K + t, s = t & 1;
      cpAsyncWait<0>();
      __syncthreads();
      if (t + 1 < K) {
        x.loadInputs(m + 1, s ^ 1);
        if (a.cache)
          x.loadRecord(m + 1, t + 1, s ^ 1);
      }
      cpAsyncCommit();
      if (t >= 1 && t + 1 < K)
        x.storeMatrix(x.slot(t), x.W(0));
      if (!a.cache)
        forwardStep(x, s, m, t + 1 < K, nullptr, x.record(m, t));
      else if (t + 1 < K)
        chainStep(x, s);
    }
    __syncthreads();
    // Back through the steps; step K-1's inputs, G, A are in set (K-1) & 1, W_{K-1} in W(0).
    int s = (K - 1) & 1, ws = 0;
    for (int t = K - 1; t >= 0; --t) {
      const int m = g * K + t;
      if (t > 0) {
        const int tl = t - 1;
        x.loadInputs(g * K + tl, s ^ 1);
        x.loadRecord(g * K + tl, tl, s ^ 1);
        x.loadMatrix(x.W(ws ^ 1), tl == 0 ? ckW : x.slot(tl));
      }
      cpAsyncCommit();
      backwardStep(x, s, ws, m, t, dgam, dlam, dtauAcc, dtauLastAcc, sumG2);
      cpAsyncWait<0>();
      __syncthreads();
      s ^= 1;
      ws ^= 1;
    }
  }

  for (int i = x.tid; i < F * F; i += kThreads) {
    const int r = i / F, c = i - r * F;
    a.dW0[int64_t(x.bh) * F * F + i] = x.dW()[r * C::LDW + c];
  }
  if (x.tid < F)
    a.db0[int64_t(x.bh) * F + x.tid] = x.db()[x.tid];
  // Per-warp column partials, then summed over the warps in order (sets 0, 1 are free now).
  float *red = x.sm + a.L.set[0]; // [kMB rows][2][F] <= 2 sets
  const int owner = x.row(0);
#pragma unroll
  for (int c = 0; c < C::CPL; ++c) {
    red[(owner * 2 + 0) * F + x.col(c)] = dgam[c];
    red[(owner * 2 + 1) * F + x.col(c)] = dlam[c];
  }
  __syncthreads();
  double *part = a.partial + int64_t(x.bh) * partialDoubles(kMB, F);
  if (x.tid < F) {
    double sg = 0.0, sla = 0.0;
    for (int w = 0; w < kMB; ++w) {
      sg += double(red[(w * 2 + 0) * F + x.tid]);
      sla += double(red[(w * 2 + 1) * F + x.tid]);
    }
    part[x.tid] = sg;
    part[F + x.tid] = sla;
  }
  if (x.warp == kWarps - 2 && x.lane < kMB) // the owners in backwardStep's Bc
    part[2 * F + x.lane] = double(dtauAcc);
  if (x.warp == kWarps - 1 && x.lane == 0)
    part[2 * F + kMB] = double(dtauLastAcc);
}

// The shared cotangents: sums of the per-(batch, head) partials in (batch, head) order.
__global__ void tcSharedKernel(int batch, int heads, int b, int f, const double *partial,
                               float *dtau, float *dtauLast, float *dgamma, float *dlambda) {
  const int64_t per = partialDoubles(b, f);
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
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
int currentDevice() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess)
    dev = 0;
  return dev;
}
int maxSharedBytes() {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, currentDevice()) !=
      cudaSuccess)
    v = 48 * 1024;
  return v;
}

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

Args argsOf(const cpu::InnerLoopShape &s, bool backward) {
  Args a;
  setShape(s, a);
  a.L = makeLayout(int(s.headDim), backward);
  return a;
}
} // namespace

bool innerLoopTensorCoreSupports(const cpu::InnerLoopShape &s) {
  if (s.n <= 0 || s.batch <= 0 || s.heads <= 0 || s.group <= 0 || s.n % s.group != 0)
    return false;
  if (s.miniBatch != kMB || (s.headDim != 64 && s.headDim != 96))
    return false;
  if (s.batch * s.heads > (int64_t(1) << 31) - 1 || s.n > (int64_t(1) << 30))
    return false;
  const int F = int(s.headDim);
  return size_t(makeLayout(F, true).total) * 4 <= size_t(maxSharedBytes()) &&
         size_t(makeLayout(F, false).total) * 4 <= size_t(maxSharedBytes());
}

int64_t innerLoopCacheFloats(int64_t miniBatch, int64_t headDim) {
  return recordOf(int(miniBatch), int(headDim)).floats;
}

size_t innerLoopTensorCoreBackwardWorkspace(const cpu::InnerLoopShape &s) {
  const int64_t BH = s.batch * s.heads;
  const int b = int(s.miniBatch), f = int(s.headDim);
  return align256(size_t(BH * partialDoubles(b, f)) * sizeof(double)) +
         size_t(BH * s.group * slotFloats(b, f)) * sizeof(float);
}

void innerLoopForwardTensorCore(const cpu::InnerLoopShape &s, const float *W0, const float *b0,
                                const float *q, const float *k, const float *v, const float *eta,
                                const float *tau, const float *tauLast, const float *gamma,
                                const float *lambda, float *Wfinal, float *bfinal, float *o,
                                float *ckptW, float *ckptB, float *cache) {
  if (!innerLoopTensorCoreSupports(s))
    throw std::invalid_argument("inner_loop (cuda, tensor cores): unsupported shape (mini-batch " +
                                std::to_string(s.miniBatch) + ", head dim " +
                                std::to_string(s.headDim) + ")");
  Args a = argsOf(s, false);
  setForwardTensors(a, W0, b0, q, k, v, eta, tau, tauLast, gamma, lambda, Wfinal, bfinal, o, ckptW,
                    ckptB);
  a.cache = cache;
  if (s.headDim == 64) {
    static AttrBytes given[2] = {}; // per kernel: the attribute is the function's
    if (s.tokenMajor)
      launch(tcForwardKernel<64, true>, a, given[1]);
    else
      launch(tcForwardKernel<64, false>, a, given[0]);
  } else {
    static AttrBytes given[2] = {}; // per kernel: the attribute is the function's
    if (s.tokenMajor)
      launch(tcForwardKernel<96, true>, a, given[1]);
    else
      launch(tcForwardKernel<96, false>, a, given[0]);
  }
}

void innerLoopBackwardTensorCore(const cpu::InnerLoopShape &s, const float *ckptW,
                                 const float *ckptB, const float *q, const float *k, const float *v,
                                 const float *eta, const float *tau, const float *tauLast,
                                 const float *gamma, const float *lambda, const float *dWfinal,
                                 const float *dbfinal, const float *dO, float *dW0, float *db0,
                                 float *dq, float *dk, float *dv, float *deta, float *dtau,
                                 float *dtauLast, float *dgamma, float *dlambda, void *workspace,
                                 const float *cache) {
  if (!innerLoopTensorCoreSupports(s))
    throw std::invalid_argument("inner_loop (cuda, tensor cores): unsupported shape (mini-batch " +
                                std::to_string(s.miniBatch) + ", head dim " +
                                std::to_string(s.headDim) + ")");
  Args a = argsOf(s, true);
  setBackwardTensors(a, s, ckptW, ckptB, q, k, v, eta, tau, tauLast, gamma, lambda, dWfinal,
                     dbfinal, dO, dW0, db0, dq, dk, dv, deta, workspace);
  a.cache = const_cast<float *>(cache); // read only here
  const int b = int(s.miniBatch), f = int(s.headDim);
  if (f == 64) {
    static AttrBytes given[2] = {}; // per kernel: the attribute is the function's
    if (s.tokenMajor)
      launch(tcBackwardKernel<64, true>, a, given[1]);
    else
      launch(tcBackwardKernel<64, false>, a, given[0]);
  } else {
    static AttrBytes given[2] = {}; // per kernel: the attribute is the function's
    if (s.tokenMajor)
      launch(tcBackwardKernel<96, true>, a, given[1]);
    else
      launch(tcBackwardKernel<96, false>, a, given[0]);
  }
  const int64_t count = b + 1 + 2 * s.heads * f;
  tcSharedKernel<<<int((count + 255) / 256), 256>>>(a.batch, a.heads, b, f, a.partial, dtau,
                                                    dtauLast, dgamma, dlambda);
}
} // namespace ttt::cuda
