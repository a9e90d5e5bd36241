// reduce: sum, mean, max over the last dimension.
#include "runtime/backend/cpu/Kernels.h"
#include "test/runtime/cpu/KernelTestUtil.h"

#include <limits>

namespace ttt::cpu::test {
namespace {
template <typename T> class ReduceTest : public ::testing::Test {};
TYPED_TEST_SUITE(ReduceTest, FloatTypes);

TYPED_TEST(ReduceTest, AgainstReference) {
  using T = TypeParam;
  for (auto [rows, cols] : {std::pair{7, 33}, std::pair{1, 1}, std::pair{3, 1000}}) {
    const auto x = randomVector<T>(rows * cols, 140 + cols, -3.0, 5.0);
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max}) {
      std::vector<T> y(rows);
      reduceLast(op, x.data(), rows, cols, y.data());
      std::vector<Real> want(rows);
      for (int64_t r = 0; r < rows; ++r) {
        Real sum = 0, best = x[r * cols];
        for (int64_t c = 0; c < cols; ++c) {
          sum += x[r * cols + c];
          if (x[r * cols + c] > best)
            best = x[r * cols + c];
        }
        want[r] = op == ReduceOp::sum ? sum : op == ReduceOp::mean ? sum / cols : best;
      }
      EXPECT_TRUE(closeByNorm(y, want, tolerance<T>()))
          << "op " << int(op) << " rows=" << rows << " cols=" << cols;
    }
  }
}

TYPED_TEST(ReduceTest, MaxOfNegativeRowsAndNaN) {
  using T = TypeParam;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> x = {T(-5), T(-3), T(-4), T(1), nan, T(2)};
  std::vector<T> y(2);
  reduceLast(ReduceOp::max, x.data(), 2, 3, y.data());
  EXPECT_EQ(y[0], T(-3));
  EXPECT_TRUE(std::isnan(y[1]));
}
} // namespace
} // namespace ttt::cpu::test
