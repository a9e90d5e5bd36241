// conv backward: the depthwise causal convolution's input gradient is the anti-causal
// correlation of dy with the same taps; the tap and bias gradients are sums over batch and time.
#include "runtime/backend/cpu/Backward.h"

#include <stdexcept>
#include <vector>

namespace ttt::cpu {
template <typename T>
void causalConvBackward(const T *x, const T *kernel, const T *dy, int64_t batch, int64_t seq,
                        int64_t dim, int64_t width, T *dx, T *dkernel, T *dbias, const T *history) {
  if (width < 1)
    throw std::invalid_argument("causal_conv_backward: width must be >= 1, got " +
                                std::to_string(width));
  // y[t] uses x[t - width + 1 + j] with tap j, so x[s] reaches y[s + width - 1 - j] through tap j.
  std::vector<double> acc(dim), dkAcc(width * dim, 0.0), dbAcc(dim, 0.0);
  for (int64_t bi = 0; bi < batch; ++bi) {
    const T *xb = x + bi * seq * dim;
    const T *hb = history ? history + bi * (width - 1) * dim : nullptr; // x[-(width-1)..-1]
    const T *dyb = dy + bi * seq * dim;
    T *dxb = dx + bi * seq * dim;
    for (int64_t s = 0; s < seq; ++s) {
      for (int64_t c = 0; c < dim; ++c)
        acc[c] = 0.0;
      for (int64_t j = 0; j < width; ++j) {
        const int64_t t = s + width - 1 - j;
        if (t >= seq)
          continue; // no output beyond the sequence end
        const T *dyt = dyb + t * dim;
        const T *kj = kernel + j * dim;
        for (int64_t c = 0; c < dim; ++c)
          acc[c] += double(kj[c]) * double(dyt[c]);
      }
      T *dxs = dxb + s * dim;
      for (int64_t c = 0; c < dim; ++c)
        dxs[c] = T(acc[c]);
    }
    for (int64_t t = 0; t < seq; ++t) {
      const T *dyt = dyb + t * dim;
      for (int64_t c = 0; c < dim; ++c)
        dbAcc[c] += double(dyt[c]);
      for (int64_t j = 0; j < width; ++j) {
        const int64_t src = t - width + 1 + j;
        if (src < 0 && !hb)
          continue; // x before the sequence start is zero
        const T *xs = src < 0 ? hb + (width - 1 + src) * dim : xb + src * dim;
        double *dkj = dkAcc.data() + j * dim;
        for (int64_t c = 0; c < dim; ++c)
          dkj[c] += double(dyt[c]) * double(xs[c]);
      }
    }
  }
  for (int64_t i = 0; i < width * dim; ++i)
    dkernel[i] = T(dkAcc[i]);
  for (int64_t c = 0; c < dim; ++c)
    dbias[c] = T(dbAcc[c]);
}

template void causalConvBackward<float>(const float *, const float *, const float *, int64_t,
                                        int64_t, int64_t, int64_t, float *, float *, float *,
                                        const float *);
template void causalConvBackward<double>(const double *, const double *, const double *, int64_t,
                                         int64_t, int64_t, int64_t, double *, double *, double *,
                                         const double *);
} // namespace ttt::cpu
