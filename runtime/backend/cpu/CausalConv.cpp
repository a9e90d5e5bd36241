// conv: depthwise causal convolution along the sequence; before t = 0 the given history (state
// passing) or zeros.
#include "runtime/backend/cpu/Kernels.h"

#include <stdexcept>
#include <vector>

namespace ttt::cpu {
template <typename T>
void causalConv(const T *x, const T *kernel, const T *bias, int64_t batch, int64_t seq, int64_t dim,
                int64_t width, T *y, const T *history) {
  if (width < 1)
    throw std::invalid_argument("causal_conv: width must be >= 1, got " + std::to_string(width));
  // Per output row, the sum runs over taps j in a fixed order, in double.
  std::vector<double> acc(dim);
  for (int64_t bi = 0; bi < batch; ++bi) {
    const T *xb = x + bi * seq * dim;
    const T *hb = history ? history + bi * (width - 1) * dim : nullptr; // x[-(width-1)..-1]
    T *yb = y + bi * seq * dim;
    for (int64_t t = 0; t < seq; ++t) {
      for (int64_t c = 0; c < dim; ++c)
        acc[c] = double(bias[c]);
      for (int64_t j = 0; j < width; ++j) {
        const int64_t src = t - width + 1 + j;
        if (src < 0 && !hb)
          continue; // x before the sequence start is zero
        const T *xs = src < 0 ? hb + (width - 1 + src) * dim : xb + src * dim;
        const T *kj = kernel + j * dim;
        for (int64_t c = 0; c < dim; ++c)
          acc[c] += double(kj[c]) * double(xs[c]);
      }
      T *yt = yb + t * dim;
      for (int64_t c = 0; c < dim; ++c)
        yt[c] = T(acc[c]);
    }
  }
}

template void causalConv<float>(const float *, const float *, const float *, int64_t, int64_t,
                                int64_t, int64_t, float *, const float *);
template void causalConv<double>(const double *, const double *, const double *, int64_t, int64_t,
                                 int64_t, int64_t, double *, const double *);
} // namespace ttt::cpu
