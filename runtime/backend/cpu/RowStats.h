// Row statistics shared by the norm kernels and their backward, so that both take exactly the
// same values (accumulated in double). Internal to runtime/backend/cpu.
#pragma once

#include <cmath>
#include <cstdint>

namespace ttt::cpu {
// 1 / sqrt(mean(x^2) + eps) of one row (RMSNorm).
template <typename T> double rmsInverse(const T *x, int64_t dim, double eps) {
  double sumSquares = 0.0;
  for (int64_t i = 0; i < dim; ++i)
    sumSquares += double(x[i]) * double(x[i]);
  return 1.0 / std::sqrt(sumSquares / double(dim) + eps);
}

struct MeanInverse {
  double mean, inv; // mean(x), 1 / sqrt(var(x) + eps)
};

// LayerNorm's statistics of one row in two passes (mean, then centred squares): no cancellation
// when |mean| >> std.
template <typename T> MeanInverse layerNormStats(const T *x, int64_t dim, double eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < dim; ++i)
    sum += double(x[i]);
  const double mean = sum / double(dim);
  double sumSquares = 0.0;
  for (int64_t i = 0; i < dim; ++i) {
    const double d = double(x[i]) - mean;
    sumSquares += d * d;
  }
  return {mean, 1.0 / std::sqrt(sumSquares / double(dim) + eps)};
}
} // namespace ttt::cpu
