// elementwise backward: dx = dy * f'(x) for the unary ops (in double, rounded once to T), and the
// reduction that undoes a numpy broadcast.
#include "runtime/backend/cpu/Backward.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ttt::cpu {
namespace {
// The derivative takes the input and the forward result (in double); dx may be dy or x.
template <typename T, typename F>
void unaryBackwardLoop(const T *x, const T *y, const T *dy, int64_t n, T *dx, F derivative) {
  for (int64_t i = 0; i < n; ++i)
    dx[i] = T(double(dy[i]) * derivative(double(x[i]), double(y[i])));
}

std::string shapeString(const Shape &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
} // namespace

template <typename T>
void unaryBackward(UnaryOp op, const T *x, const T *y, const T *dy, int64_t n, double alpha,
                   T *dx) {
  switch (op) {
  case UnaryOp::neg:
    return unaryBackwardLoop(x, y, dy, n, dx, [](double, double) { return -1.0; });
  case UnaryOp::exp:
    return unaryBackwardLoop(x, y, dy, n, dx, [](double, double v) { return v; });
  case UnaryOp::log:
    return unaryBackwardLoop(x, y, dy, n, dx, [](double u, double) { return 1.0 / u; });
  case UnaryOp::sqrt:
    return unaryBackwardLoop(x, y, dy, n, dx, [](double, double v) { return 0.5 / v; });
  case UnaryOp::rsqrt:
    return unaryBackwardLoop(x, y, dy, n, dx, [](double, double v) { return -0.5 * v * v * v; });
  case UnaryOp::reciprocal:
    return unaryBackwardLoop(x, y, dy, n, dx, [](double, double v) { return -v * v; });
  case UnaryOp::sigmoid:
    return unaryBackwardLoop(x, y, dy, n, dx, [](double, double v) { return v * (1.0 - v); });
  case UnaryOp::silu:
    // silu = x s with s = sigmoid(x); s is recomputed from x rather than divided out of y.
    return unaryBackwardLoop(x, y, dy, n, dx, [](double u, double) {
      const double s = 1.0 / (1.0 + std::exp(-u));
      return s * (1.0 + u * (1.0 - s));
    });
  case UnaryOp::gelu_tanh:
    // The exact derivative of the tanh approximation of the forward:
    // d/dx 0.5 x (1 + tanh(c (x + a x^3))) = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
    return unaryBackwardLoop(x, y, dy, n, dx, [](double u, double) {
      const double sqrt2OverPi = 0.7978845608028654; // sqrt(2 / pi), as in the forward
      const double t = std::tanh(sqrt2OverPi * (u + 0.044715 * u * u * u));
      return 0.5 * (1.0 + t) +
             0.5 * u * (1.0 - t * t) * sqrt2OverPi * (1.0 + 3.0 * 0.044715 * u * u);
    });
  case UnaryOp::relu:
    return unaryBackwardLoop(x, y, dy, n, dx, [](double u, double) { return u > 0.0 ? 1.0 : 0.0; });
  case UnaryOp::scale:
    return unaryBackwardLoop(x, y, dy, n, dx, [alpha](double, double) { return alpha; });
  case UnaryOp::add_scalar:
    return unaryBackwardLoop(x, y, dy, n, dx, [](double, double) { return 1.0; });
  }
  throw std::invalid_argument("unary_backward: unknown op");
}

template <typename T> void sumToShape(const T *x, const Shape &from, const Shape &to, T *y) {
  // `to` must broadcast to `from`: no higher rank, and each right-aligned dim equal or 1.
  bool valid = to.size() <= from.size();
  for (size_t i = 0; valid && i < to.size(); ++i) {
    const int64_t dt = to[to.size() - 1 - i], df = from[from.size() - 1 - i];
    valid = dt == df || dt == 1;
  }
  if (!valid)
    throw std::invalid_argument("sum_to_shape: " + shapeString(to) + " does not broadcast to " +
                                shapeString(from));
  const size_t rank = from.size();
  // Strides into y for every dim of x: 0 where `to` is missing the dim or has it as 1.
  std::vector<int64_t> strideY(rank, 0);
  int64_t stride = 1;
  for (size_t i = 0; i < to.size(); ++i) {
    const size_t d = rank - 1 - i;
    const int64_t extent = to[to.size() - 1 - i];
    strideY[d] = extent == 1 ? 0 : stride;
    stride *= extent;
  }
  std::vector<double> acc(numElements(to), 0.0);
  const int64_t total = numElements(from);
  // x in row-major order (a fixed summation order), an odometer tracking the offset into y.
  std::vector<int64_t> index(rank, 0);
  int64_t offY = 0;
  for (int64_t o = 0; o < total; ++o) {
    acc[offY] += double(x[o]);
    for (int d = int(rank) - 1; d >= 0; --d) {
      ++index[d];
      offY += strideY[d];
      if (index[d] < from[d])
        break;
      offY -= strideY[d] * from[d];
      index[d] = 0;
    }
  }
  std::transform(acc.begin(), acc.end(), y, [](double v) { return T(v); });
}

template void unaryBackward<float>(UnaryOp, const float *, const float *, const float *, int64_t,
                                   double, float *);
template void unaryBackward<double>(UnaryOp, const double *, const double *, const double *,
                                    int64_t, double, double *);
template void sumToShape<float>(const float *, const Shape &, const Shape &, float *);
template void sumToShape<double>(const double *, const Shape &, const Shape &, double *);
} // namespace ttt::cpu
