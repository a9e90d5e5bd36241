// rope backward: the inverse rotation (rope then rope_backward gives the input back) and the
// transpose (central differences of the forward), float against double, in place.
#include "runtime/backend/cpu/Backward.h"
#include "test/runtime/cpu/GradientTestUtil.h"

#include <stdexcept>

namespace ttt::cpu::test {
namespace {
struct RopeCase {
  int64_t batch, seq, heads, f, period;
  double theta;
};
const RopeCase kCases[] = {{2, 19, 3, 8, 16, 10000.0},
                           {1, 5, 1, 2, 1000, 10000.0},
                           {1, 20, 2, 16, 16, 500000.0},
                           {1, 9, 2, 6, 1, 10000.0}};

int64_t size(const RopeCase &c) { return c.batch * c.seq * c.heads * c.f; }

TEST(RopeBackwardTest, UndoesTheForward) {
  for (const RopeCase &c : kCases) {
    const auto x = floatExact(size(c), 500 + c.f);
    std::vector<double> y(x.size()), back(x.size());
    rope(x.data(), c.batch, c.seq, c.heads, c.f, c.period, c.theta, y.data());
    ropeBackward(y.data(), c.batch, c.seq, c.heads, c.f, c.period, c.theta, back.data());
    EXPECT_TRUE(closeByNorm(back, toReal(x), 1e-14)) << "f=" << c.f << " period=" << c.period;
  }
}

TEST(RopeBackwardTest, MatchesFiniteDifferences) {
  for (const RopeCase &c : kCases) {
    auto x = floatExact(size(c), 510 + c.f);
    const auto dy = floatExact(size(c), 520 + c.f);
    std::vector<double> dx(x.size());
    ropeBackward(dy.data(), c.batch, c.seq, c.heads, c.f, c.period, c.theta, dx.data());
    auto loss = [&] {
      std::vector<double> y(x.size());
      rope(x.data(), c.batch, c.seq, c.heads, c.f, c.period, c.theta, y.data());
      return dot(dy, y);
    };
    EXPECT_TRUE(closeByNorm(dx, centralDifferences(x, kStep, loss), kFiniteDifferenceTolerance))
        << "f=" << c.f << " period=" << c.period;
  }
}

TEST(RopeBackwardTest, FloatMatchesDoubleAndInPlace) {
  for (const RopeCase &c : kCases) {
    const auto dy = floatExact(size(c), 530 + c.f);
    expectFloatMatchesDouble(
        [&](auto tag) {
          using T = decltype(tag);
          const auto dyT = cast<T>(dy);
          std::vector<T> dx(dyT.size());
          ropeBackward(dyT.data(), c.batch, c.seq, c.heads, c.f, c.period, c.theta, dx.data());
          auto inPlace = dyT;
          ropeBackward(inPlace.data(), c.batch, c.seq, c.heads, c.f, c.period, c.theta,
                       inPlace.data());
          EXPECT_TRUE(bitwiseEqual(inPlace, dx)) << "in place differs";
          return std::vector<std::vector<T>>{dx};
        },
        "f=" + std::to_string(c.f));
  }
}

TEST(RopeBackwardTest, OddHeadDimThrows) {
  std::vector<double> v(6, 1.0);
  EXPECT_THROW(ropeBackward(v.data(), 1, 2, 1, 3, 16, 10000.0, v.data()), std::invalid_argument);
}
} // namespace
} // namespace ttt::cpu::test
