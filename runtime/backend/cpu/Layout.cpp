// layout: transpose (any permutation), slice and insert along one axis, tril, fill.
#include "runtime/backend/cpu/Kernels.h"

#include <algorithm>
#include <stdexcept>

namespace ttt::cpu {
namespace {
constexpr int kMaxRank = 6;

// Elements before `axis` (outer), along it (extent) and after it (inner) of a row-major shape.
struct AxisSplit {
  int64_t outer = 1, extent = 1, inner = 1;
};

AxisSplit splitAt(const Shape &shape, int axis, int64_t start, int64_t size, const char *what) {
  if (axis < 0 || axis >= int(shape.size()))
    throw std::invalid_argument(std::string(what) + ": axis " + std::to_string(axis) +
                                " is outside a rank-" + std::to_string(shape.size()) + " shape");
  if (start < 0 || size < 0 || start + size > shape[axis])
    throw std::invalid_argument(std::string(what) + ": range [" + std::to_string(start) + ", " +
                                std::to_string(start + size) + ") is outside axis " +
                                std::to_string(axis) + " of extent " + std::to_string(shape[axis]));
  AxisSplit s;
  for (int d = 0; d < axis; ++d)
    s.outer *= shape[d];
  s.extent = shape[axis];
  for (int d = axis + 1; d < int(shape.size()); ++d)
    s.inner *= shape[d];
  return s;
}
} // namespace

int64_t numElements(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

template <typename T>
void transpose(const T *x, const Shape &shape, const std::vector<int> &perm, T *y) {
  const int rank = int(shape.size());
  if (rank > kMaxRank || int(perm.size()) != rank)
    throw std::invalid_argument("transpose: permutation of size " + std::to_string(perm.size()) +
                                " for a rank-" + std::to_string(rank) +
                                " shape (rank <= 6 supported)");
  bool seen[kMaxRank] = {};
  for (int p : perm) {
    if (p < 0 || p >= rank || seen[p])
      throw std::invalid_argument("transpose: not a permutation of 0.." + std::to_string(rank - 1));
    seen[p] = true;
  }
  const int64_t total = numElements(shape);
  if (total == 0)
    return;
  if (rank == 0) {
    y[0] = x[0];
    return;
  }
  // y's dim d is x's dim perm[d]: walk y in order and step through x with x's strides.
  int64_t xStride[kMaxRank], outShape[kMaxRank], srcStride[kMaxRank], index[kMaxRank] = {};
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    xStride[d] = stride;
    stride *= shape[d];
  }
  for (int d = 0; d < rank; ++d) {
    outShape[d] = shape[perm[d]];
    srcStride[d] = xStride[perm[d]];
  }
  const int64_t inner = outShape[rank - 1], innerStride = srcStride[rank - 1];
  int64_t src = 0;
  for (int64_t o = 0; o < total; o += inner) {
    for (int64_t i = 0; i < inner; ++i)
      y[o + i] = x[src + i * innerStride];
    for (int d = rank - 2; d >= 0; --d) {
      ++index[d];
      src += srcStride[d];
      if (index[d] < outShape[d])
        break;
      src -= srcStride[d] * outShape[d];
      index[d] = 0;
    }
  }
}

template <typename T>
void slice(const T *x, const Shape &shape, int axis, int64_t start, int64_t size, T *y) {
  const AxisSplit s = splitAt(shape, axis, start, size, "slice");
  for (int64_t o = 0; o < s.outer; ++o) {
    const T *from = x + (o * s.extent + start) * s.inner;
    std::copy(from, from + size * s.inner, y + o * size * s.inner);
  }
}

template <typename T>
void insert(const T *src, const Shape &dstShape, int axis, int64_t start, int64_t size, T *dst) {
  const AxisSplit s = splitAt(dstShape, axis, start, size, "insert");
  for (int64_t o = 0; o < s.outer; ++o) {
    const T *from = src + o * size * s.inner;
    std::copy(from, from + size * s.inner, dst + (o * s.extent + start) * s.inner);
  }
}

template <typename T> void tril(const T *x, int64_t matrices, int64_t n, T *y) {
  for (int64_t m = 0; m < matrices; ++m)
    for (int64_t r = 0; r < n; ++r) {
      const int64_t row = (m * n + r) * n;
      for (int64_t c = 0; c < n; ++c)
        y[row + c] = c > r ? T(0) : x[row + c];
    }
}

template <typename T> void fill(T *y, int64_t n, double value) { std::fill(y, y + n, T(value)); }

template void transpose<float>(const float *, const Shape &, const std::vector<int> &, float *);
template void transpose<double>(const double *, const Shape &, const std::vector<int> &, double *);
template void slice<float>(const float *, const Shape &, int, int64_t, int64_t, float *);
template void slice<double>(const double *, const Shape &, int, int64_t, int64_t, double *);
template void insert<float>(const float *, const Shape &, int, int64_t, int64_t, float *);
template void insert<double>(const double *, const Shape &, int, int64_t, int64_t, double *);
template void tril<float>(const float *, int64_t, int64_t, float *);
template void tril<double>(const double *, int64_t, int64_t, double *);
template void fill<float>(float *, int64_t, double);
template void fill<double>(double *, int64_t, double);
} // namespace ttt::cpu
