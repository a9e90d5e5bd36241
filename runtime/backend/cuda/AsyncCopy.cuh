// Asynchronous global -> shared copies for the inner-loop kernels (InnerLoop.cu and
// InnerLoopTensorCore.cu): cp.async (sm_80+) without registers, waited with wait_group, and the
// row copies of a block of kThreads threads built on them. Included inside each file's anonymous
// namespace, after its kThreads.
#pragma once

__device__ __forceinline__ void cpAsync4(float *dst, const float *src) {
  const unsigned d = unsigned(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d), "l"(src) : "memory");
}
__device__ __forceinline__ void cpAsync16(float *dst, const float *src) {
  const unsigned d = unsigned(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(src) : "memory");
}
__device__ __forceinline__ void cpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N> __device__ __forceinline__ void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// rows x cols floats, contiguous in global memory, into shared rows of stride ld (all threads).
__device__ void copyRows(float *dst, int ld, const float *src, int rows, int cols) {
  const bool vec = (cols % 4 == 0) && (ld % 4 == 0) &&
                   (reinterpret_cast<uintptr_t>(src) % 16 == 0) &&
                   (__cvta_generic_to_shared(dst) % 16 == 0);
  if (vec) {
    const int per = cols / 4;
    for (int i = threadIdx.x; i < rows * per; i += kThreads) {
      const int r = i / per, c = i - r * per;
      cpAsync16(dst + r * ld + 4 * c, src + 4 * int64_t(i));
    }
  } else {
    for (int i = threadIdx.x; i < rows * cols; i += kThreads) {
      const int r = i / cols, c = i - r * cols;
      cpAsync4(dst + r * ld + c, src + i);
    }
  }
}
// The same from global rows srcLd floats apart (token-major inputs).
__device__ void copyRowsStrided(float *dst, int ld, const float *src, int64_t srcLd, int rows,
                                int cols) {
  const bool vec = (cols % 4 == 0) && (ld % 4 == 0) && (srcLd % 4 == 0) &&
                   (reinterpret_cast<uintptr_t>(src) % 16 == 0) &&
                   (__cvta_generic_to_shared(dst) % 16 == 0);
  if (vec) {
    const int per = cols / 4;
    for (int i = threadIdx.x; i < rows * per; i += kThreads) {
      const int r = i / per, c = i - r * per;
      cpAsync16(dst + r * ld + 4 * c, src + r * srcLd + 4 * c);
    }
  } else {
    for (int i = threadIdx.x; i < rows * cols; i += kThreads) {
      const int r = i / cols, c = i - r * cols;
      cpAsync4(dst + r * ld + c, src + r * srcLd + c);
    }
  }
}
