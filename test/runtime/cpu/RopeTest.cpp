// rope: interleaved pairs rotated by p * theta^(-2i/f) with p = t mod period.
#include "runtime/backend/cpu/Kernels.h"
#include "test/runtime/cpu/KernelTestUtil.h"

#include <stdexcept>

namespace ttt::cpu::test {
namespace {
template <typename T> class RopeTest : public ::testing::Test {};
TYPED_TEST_SUITE(RopeTest, FloatTypes);

template <typename T>
std::vector<Real> reference(const std::vector<T> &x, int64_t batch, int64_t seq, int64_t heads,
                            int64_t f, int64_t period, double theta) {
  std::vector<Real> y(x.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < f / 2; ++i) {
          const Real frequency = std::exp(-Real(2 * i) / Real(f) * std::log(Real(theta)));
          const Real angle = Real(t % period) * frequency;
          const int64_t at = ((b * seq + t) * heads + h) * f + 2 * i;
          const Real x0 = x[at], x1 = x[at + 1];
          y[at] = x0 * std::cos(angle) - x1 * std::sin(angle);
          y[at + 1] = x0 * std::sin(angle) + x1 * std::cos(angle);
        }
  return y;
}

TYPED_TEST(RopeTest, AgainstReference) {
  using T = TypeParam;
  for (auto [batch, seq, heads, f, period, theta] :
       {std::tuple{2, 37, 3, 8, 16, 10000.0}, std::tuple{1, 5, 1, 2, 1000, 10000.0},
        std::tuple{2, 20, 2, 64, 16, 500000.0}, std::tuple{1, 9, 4, 6, 1, 10000.0}}) {
    const auto x = randomVector<T>(batch * seq * heads * f, 80 + f);
    std::vector<T> y(x.size());
    rope(x.data(), batch, seq, heads, f, period, theta, y.data());
    EXPECT_TRUE(closeByNorm(y, reference(x, batch, seq, heads, f, period, theta), tolerance<T>()))
        << "seq=" << seq << " heads=" << heads << " f=" << f << " period=" << period;
    auto inPlace = x;
    rope(inPlace.data(), batch, seq, heads, f, period, theta, inPlace.data());
    EXPECT_TRUE(bitwiseEqual(inPlace, y)) << "in place differs";
  }
}

TYPED_TEST(RopeTest, PositionRestartsEveryPeriod) {
  using T = TypeParam;
  const int64_t seq = 40, heads = 2, f = 8, period = 16;
  // The same vector at every t: token t and token t + period must come out bitwise equal, and
  // token 0 (angle 0) unchanged.
  const auto one = randomVector<T>(heads * f, 85);
  std::vector<T> x;
  for (int64_t t = 0; t < seq; ++t)
    x.insert(x.end(), one.begin(), one.end());
  std::vector<T> y(x.size());
  rope(x.data(), 1, seq, heads, f, period, 10000.0, y.data());
  const int64_t row = heads * f;
  for (int64_t t = period; t < seq; ++t)
    for (int64_t e = 0; e < row; ++e)
      ASSERT_EQ(y[t * row + e], y[(t - period) * row + e]) << "t=" << t << " e=" << e;
  for (int64_t e = 0; e < row; ++e)
    EXPECT_EQ(y[e], x[e]);
  EXPECT_NE(y[row + 0], x[row + 0]) << "t = 1 is rotated";
}

TYPED_TEST(RopeTest, OddHeadDimensionThrows) {
  using T = TypeParam;
  std::vector<T> x(6, T(1)), y(6);
  EXPECT_THROW(rope(x.data(), 1, 2, 1, 3, 16, 10000.0, y.data()), std::invalid_argument);
}
} // namespace
} // namespace ttt::cpu::test
