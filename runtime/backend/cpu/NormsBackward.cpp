// norms backward: RMSNorm and LayerNorm over the last dimension. Row statistics and the weight
// and bias sums over rows are accumulated in double. Every row is read completely before its dx is
// written, so dx may be dy or x.
#include "runtime/backend/cpu/Backward.h"
#include "runtime/backend/cpu/RowStats.h"

#include <vector>

namespace ttt::cpu {
template <typename T>
void rmsNormBackward(const T *x, const T *w, const T *dy, int64_t rows, int64_t dim, double eps,
                     T *dx, T *dw) {
  std::vector<double> dwAcc(dim, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim;
    const T *dyr = dy + r * dim;
    T *dxr = dx + r * dim;
    const double inv = rmsInverse(xr, dim, eps);
    // With g = dy * w: dx = inv * g - x * inv^3 * mean(g * x).
    double gDotX = 0.0;
    for (int64_t i = 0; i < dim; ++i) {
      gDotX += double(dyr[i]) * double(w[i]) * double(xr[i]);
      dwAcc[i] += double(dyr[i]) * double(xr[i]) * inv;
    }
    const double coefficient = inv * inv * inv * gDotX / double(dim);
    for (int64_t i = 0; i < dim; ++i)
      dxr[i] = T(inv * double(dyr[i]) * double(w[i]) - double(xr[i]) * coefficient);
  }
  for (int64_t i = 0; i < dim; ++i)
    dw[i] = T(dwAcc[i]);
}

template <typename T>
void layerNormBackward(const T *x, const T *w, const T *dy, int64_t rows, int64_t dim, double eps,
                       T *dx, T *dw, T *db) {
  std::vector<double> dwAcc(dim, 0.0), dbAcc(dim, 0.0), xhat(dim);
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim;
    const T *dyr = dy + r * dim;
    T *dxr = dx + r * dim;
    const auto [mean, inv] = layerNormStats(xr, dim, eps);
    // With g = dy * w: dx = inv * (g - mean(g) - xhat * mean(g * xhat)).
    double sumG = 0.0, sumGXhat = 0.0;
    for (int64_t i = 0; i < dim; ++i) {
      xhat[i] = (double(xr[i]) - mean) * inv;
      const double g = double(dyr[i]) * double(w[i]);
      sumG += g;
      sumGXhat += g * xhat[i];
      dwAcc[i] += double(dyr[i]) * xhat[i];
      dbAcc[i] += double(dyr[i]);
    }
    const double meanG = sumG / double(dim), meanGXhat = sumGXhat / double(dim);
    for (int64_t i = 0; i < dim; ++i)
      dxr[i] = T(inv * (double(dyr[i]) * double(w[i]) - meanG - xhat[i] * meanGXhat));
  }
  for (int64_t i = 0; i < dim; ++i) {
    dw[i] = T(dwAcc[i]);
    db[i] = T(dbAcc[i]);
  }
}

template void rmsNormBackward<float>(const float *, const float *, const float *, int64_t, int64_t,
                                     double, float *, float *);
template void rmsNormBackward<double>(const double *, const double *, const double *, int64_t,
                                      int64_t, double, double *, double *);
template void layerNormBackward<float>(const float *, const float *, const float *, int64_t,
                                       int64_t, double, float *, float *, float *);
template void layerNormBackward<double>(const double *, const double *, const double *, int64_t,
                                        int64_t, double, double *, double *, double *);
} // namespace ttt::cpu
