// reduce: sum, mean or max over the last dimension. Sums accumulate in double, left to right.
#include "runtime/backend/cpu/Kernels.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace ttt::cpu {
template <typename T> void reduceLast(ReduceOp op, const T *x, int64_t rows, int64_t cols, T *y) {
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * cols;
    switch (op) {
    case ReduceOp::sum:
    case ReduceOp::mean: {
      double sum = 0.0;
      for (int64_t c = 0; c < cols; ++c)
        sum += double(xr[c]);
      // The mean of an empty row is 0/0 = NaN, like numpy's.
      y[r] = T(op == ReduceOp::sum ? sum : sum / double(cols));
      break;
    }
    case ReduceOp::max: {
      // An empty row's max is -inf; a NaN anywhere in the row propagates.
      T best = -std::numeric_limits<T>::infinity();
      for (int64_t c = 0; c < cols; ++c)
        if (xr[c] > best || std::isnan(xr[c])) {
          best = xr[c];
          if (std::isnan(best))
            break;
        }
      y[r] = best;
      break;
    }
    default:
      throw std::invalid_argument("reduce: unknown op");
    }
  }
}

template void reduceLast<float>(ReduceOp, const float *, int64_t, int64_t, float *);
template void reduceLast<double>(ReduceOp, const double *, int64_t, int64_t, double *);
} // namespace ttt::cpu
