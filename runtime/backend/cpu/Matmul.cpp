// matmul: batched C = alpha * op(A) * op(B) (+ C), one OpenBLAS gemm per batch entry.
#include "runtime/backend/cpu/Kernels.h"

#include <cblas.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace ttt::cpu {
namespace {
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, float alpha,
          const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c,
          blasint ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, double alpha,
          const double *a, blasint lda, const double *b, blasint ldb, double beta, double *c,
          blasint ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

blasint toBlasInt(int64_t v, const char *what) {
  if (v < 0 || v > std::numeric_limits<blasint>::max())
    throw std::invalid_argument(std::string("matmul: ") + what + " = " + std::to_string(v) +
                                " is negative or too large for BLAS");
  return static_cast<blasint>(v);
}
} // namespace

template <typename T>
void matmul(const MatmulShape &s, T alpha, const T *a, const T *b, bool accumulate, T *c) {
  if (s.batch < 0)
    throw std::invalid_argument("matmul: negative batch " + std::to_string(s.batch));
  const blasint m = toBlasInt(s.m, "m"), n = toBlasInt(s.n, "n"), k = toBlasInt(s.k, "k");
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    // An empty sum: BLAS would reject the zero leading dimension, and the answer is known.
    if (!accumulate)
      for (int64_t bi = 0; bi < s.batch; ++bi)
        std::fill(c + bi * s.strideC, c + bi * s.strideC + int64_t(m) * n, T(0));
    return;
  }
  // Row-major leading dimensions of A and B as stored (before op).
  const blasint lda = s.transA ? m : k;
  const blasint ldb = s.transB ? k : n;
  const CBLAS_TRANSPOSE ta = s.transA ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = s.transB ? CblasTrans : CblasNoTrans;
  // beta = 0 makes BLAS ignore C's old contents (even NaN), as "not accumulate" requires.
  const T beta = accumulate ? T(1) : T(0);
  for (int64_t bi = 0; bi < s.batch; ++bi)
    gemm(ta, tb, m, n, k, alpha, a + bi * s.strideA, lda, b + bi * s.strideB, ldb, beta,
         c + bi * s.strideC, n);
}

template void matmul<float>(const MatmulShape &, float, const float *, const float *, bool,
                            float *);
template void matmul<double>(const MatmulShape &, double, const double *, const double *, bool,
                             double *);
} // namespace ttt::cpu
