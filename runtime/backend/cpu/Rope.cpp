// rope: rotary position embedding on interleaved pairs (2i, 2i+1) of every head, the position
// taken modulo `period`; its backward is the rotation by the opposite angle (a rotation's inverse
// is its transpose). Angles, cosines and sines in double; y may be x, dx may be dy.
#include "runtime/backend/cpu/Backward.h"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace ttt::cpu {
namespace {
// Rotates every pair by direction * position * theta^(-2i/headDim); direction is +1 or -1
// (sin is odd and cos even, so -1 is exactly the transpose of +1).
template <typename T>
void rotatePairs(const char *name, const T *x, int64_t batch, int64_t seq, int64_t heads,
                 int64_t headDim, int64_t period, double theta, double direction, T *y) {
  if (headDim % 2 != 0)
    throw std::invalid_argument(std::string(name) + ": head dimension must be even, got " +
                                std::to_string(headDim));
  if (period < 1)
    throw std::invalid_argument(std::string(name) + ": period must be >= 1, got " +
                                std::to_string(period));
  const int64_t pairs = headDim / 2;
  std::vector<double> cosines(pairs), sines(pairs);
  for (int64_t t = 0; t < seq; ++t) {
    const double position = double(t % period);
    for (int64_t i = 0; i < pairs; ++i) {
      const double angle = position * std::pow(theta, -2.0 * double(i) / double(headDim));
      cosines[i] = std::cos(angle);
      sines[i] = direction * std::sin(angle);
    }
    for (int64_t bi = 0; bi < batch; ++bi) {
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t offset = ((bi * seq + t) * heads + h) * headDim;
        const T *xh = x + offset;
        T *yh = y + offset;
        for (int64_t i = 0; i < pairs; ++i) {
          const double x0 = xh[2 * i], x1 = xh[2 * i + 1];
          yh[2 * i] = T(x0 * cosines[i] - x1 * sines[i]);
          yh[2 * i + 1] = T(x0 * sines[i] + x1 * cosines[i]);
        }
      }
    }
  }
}
} // namespace

template <typename T>
void rope(const T *x, int64_t batch, int64_t seq, int64_t heads, int64_t headDim, int64_t period,
          double theta, T *y) {
  rotatePairs("rope", x, batch, seq, heads, headDim, period, theta, 1.0, y);
}

template <typename T>
void ropeBackward(const T *dy, int64_t batch, int64_t seq, int64_t heads, int64_t headDim,
                  int64_t period, double theta, T *dx) {
  rotatePairs("rope_backward", dy, batch, seq, heads, headDim, period, theta, -1.0, dx);
}

template void rope<float>(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, double,
                          float *);
template void rope<double>(const double *, int64_t, int64_t, int64_t, int64_t, int64_t, double,
                           double *);
template void ropeBackward<float>(const float *, int64_t, int64_t, int64_t, int64_t, int64_t,
                                  double, float *);
template void ropeBackward<double>(const double *, int64_t, int64_t, int64_t, int64_t, int64_t,
                                   double, double *);
} // namespace ttt::cpu
