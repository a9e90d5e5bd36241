// norms: RMSNorm and LayerNorm over the last dimension; statistics accumulated in double.
// Each row's statistics are taken before the row is written, so y may be x.
#include "runtime/backend/cpu/Kernels.h"
#include "runtime/backend/cpu/RowStats.h"

namespace ttt::cpu {
template <typename T>
void rmsNorm(const T *x, const T *w, int64_t rows, int64_t dim, double eps, T *y) {
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim;
    T *yr = y + r * dim;
    const double inv = rmsInverse(xr, dim, eps);
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = T(double(w[i]) * (double(xr[i]) * inv));
  }
}

template <typename T>
void layerNorm(const T *x, const T *w, const T *b, int64_t rows, int64_t dim, double eps, T *y) {
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim;
    T *yr = y + r * dim;
    const auto [mean, inv] = layerNormStats(xr, dim, eps);
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = T(double(w[i]) * ((double(xr[i]) - mean) * inv) + double(b[i]));
  }
}

template void rmsNorm<float>(const float *, const float *, int64_t, int64_t, double, float *);
template void rmsNorm<double>(const double *, const double *, int64_t, int64_t, double, double *);
template void layerNorm<float>(const float *, const float *, const float *, int64_t, int64_t,
                               double, float *);
template void layerNorm<double>(const double *, const double *, const double *, int64_t, int64_t,
                                double, double *);
} // namespace ttt::cpu
