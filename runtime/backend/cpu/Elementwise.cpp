// elementwise: binary ops with numpy broadcasting and unary ops. Unary results are computed in
// double and rounded once to T. The output may be an input that already has the output's shape.
#include "runtime/backend/cpu/Kernels.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ttt::cpu {
namespace {
constexpr int kMaxRank = 6;

std::string shapeString(const Shape &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The numpy broadcast of a and b (right-aligned; equal dims or a 1 on either side).
bool tryBroadcast(const Shape &a, const Shape &b, Shape &out) {
  const size_t rank = std::max(a.size(), b.size());
  out.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1)
      return false;
    out[rank - 1 - i] = da == 1 ? db : da;
  }
  return true;
}

// Element strides of `shape` seen through the broadcast `rank`-dimensional output: leading
// (missing) dims and dims of size 1 get stride 0.
void broadcastStrides(const Shape &shape, size_t rank, int64_t *strides) {
  int64_t stride = 1;
  for (size_t i = 0; i < rank; ++i) {
    const size_t out = rank - 1 - i;
    if (i < shape.size()) {
      const int64_t d = shape[shape.size() - 1 - i];
      strides[out] = d == 1 ? 0 : stride;
      stride *= d;
    } else {
      strides[out] = 0;
    }
  }
}

// Walks the output in row-major order: an odometer over the leading dims, a strided inner loop
// over the last one.
template <typename T, typename F>
void broadcastLoop(const T *a, const Shape &shapeA, const T *b, const Shape &shapeB,
                   const Shape &outShape, T *out, F f) {
  const size_t rank = outShape.size();
  const int64_t total = numElements(outShape);
  if (total == 0)
    return;
  if (rank == 0) {
    out[0] = f(a[0], b[0]);
    return;
  }
  int64_t strideA[kMaxRank], strideB[kMaxRank], index[kMaxRank] = {};
  broadcastStrides(shapeA, rank, strideA);
  broadcastStrides(shapeB, rank, strideB);
  const int64_t inner = outShape[rank - 1];
  const int64_t ia = strideA[rank - 1], ib = strideB[rank - 1];
  int64_t offA = 0, offB = 0;
  for (int64_t o = 0; o < total; o += inner) {
    for (int64_t i = 0; i < inner; ++i)
      out[o + i] = f(a[offA + i * ia], b[offB + i * ib]);
    // Advance the odometer over dims [0, rank - 1).
    for (int d = int(rank) - 2; d >= 0; --d) {
      ++index[d];
      offA += strideA[d];
      offB += strideB[d];
      if (index[d] < outShape[d])
        break;
      offA -= strideA[d] * outShape[d];
      offB -= strideB[d] * outShape[d];
      index[d] = 0;
    }
  }
}
} // namespace

Shape broadcastShape(const Shape &a, const Shape &b) {
  Shape out;
  return tryBroadcast(a, b, out) ? out : Shape{};
}

template <typename T>
void binary(BinaryOp op, const T *a, const Shape &shapeA, const T *b, const Shape &shapeB, T *out) {
  Shape outShape;
  if (!tryBroadcast(shapeA, shapeB, outShape))
    throw std::invalid_argument("binary: shapes " + shapeString(shapeA) + " and " +
                                shapeString(shapeB) + " do not broadcast");
  if (outShape.size() > kMaxRank)
    throw std::invalid_argument("binary: rank " + std::to_string(outShape.size()) +
                                " is above the supported " + std::to_string(kMaxRank));
  switch (op) {
  case BinaryOp::add:
    return broadcastLoop(a, shapeA, b, shapeB, outShape, out, [](T x, T y) { return x + y; });
  case BinaryOp::sub:
    return broadcastLoop(a, shapeA, b, shapeB, outShape, out, [](T x, T y) { return x - y; });
  case BinaryOp::mul:
    return broadcastLoop(a, shapeA, b, shapeB, outShape, out, [](T x, T y) { return x * y; });
  case BinaryOp::div:
    return broadcastLoop(a, shapeA, b, shapeB, outShape, out, [](T x, T y) { return x / y; });
  case BinaryOp::max:
    // NaN in either operand propagates, as in numpy's maximum.
    return broadcastLoop(a, shapeA, b, shapeB, outShape, out,
                         [](T x, T y) { return (x >= y || std::isnan(x)) ? x : y; });
  }
  throw std::invalid_argument("binary: unknown op");
}

namespace {
template <typename T, typename F> void unaryLoop(const T *x, int64_t n, T *y, F f) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = T(f(double(x[i])));
}
} // namespace

template <typename T> void unary(UnaryOp op, const T *x, int64_t n, double alpha, T *y) {
  switch (op) {
  case UnaryOp::neg:
    return unaryLoop(x, n, y, [](double v) { return -v; });
  case UnaryOp::exp:
    return unaryLoop(x, n, y, [](double v) { return std::exp(v); });
  case UnaryOp::log:
    return unaryLoop(x, n, y, [](double v) { return std::log(v); });
  case UnaryOp::sqrt:
    return unaryLoop(x, n, y, [](double v) { return std::sqrt(v); });
  case UnaryOp::rsqrt:
    return unaryLoop(x, n, y, [](double v) { return 1.0 / std::sqrt(v); });
  case UnaryOp::reciprocal:
    return unaryLoop(x, n, y, [](double v) { return 1.0 / v; });
  case UnaryOp::sigmoid:
    return unaryLoop(x, n, y, [](double v) { return 1.0 / (1.0 + std::exp(-v)); });
  case UnaryOp::silu:
    return unaryLoop(x, n, y, [](double v) { return v / (1.0 + std::exp(-v)); });
  case UnaryOp::gelu_tanh:
    return unaryLoop(x, n, y, [](double v) {
      const double sqrt2OverPi = 0.7978845608028654; // sqrt(2 / pi)
      return 0.5 * v * (1.0 + std::tanh(sqrt2OverPi * (v + 0.044715 * v * v * v)));
    });
  case UnaryOp::relu:
    // NaN stays NaN (a comparison with NaN is false).
    return unaryLoop(x, n, y, [](double v) { return v < 0.0 ? 0.0 : v; });
  case UnaryOp::scale:
    return unaryLoop(x, n, y, [alpha](double v) { return alpha * v; });
  case UnaryOp::add_scalar:
    return unaryLoop(x, n, y, [alpha](double v) { return v + alpha; });
  }
  throw std::invalid_argument("unary: unknown op");
}

template void binary<float>(BinaryOp, const float *, const Shape &, const float *, const Shape &,
                            float *);
template void binary<double>(BinaryOp, const double *, const Shape &, const double *, const Shape &,
                             double *);
template void unary<float>(UnaryOp, const float *, int64_t, double, float *);
template void unary<double>(UnaryOp, const double *, int64_t, double, double *);
} // namespace ttt::cpu
