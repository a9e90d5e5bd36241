// AdamW against an independent long-double reference over several steps (decay on and off, a
// clip scale, a resumed step 10), sum_squares, and the warmup-cosine schedule of spec 4.1-4.2.
#include "runtime/backend/cpu/Backward.h"
#include "test/runtime/cpu/GradientTestUtil.h"

namespace ttt::cpu::test {
namespace {
template <typename T> class OptimizerTest : public ::testing::Test {};
TYPED_TEST_SUITE(OptimizerTest, FloatTypes);

constexpr double kBeta1 = 0.9, kBeta2 = 0.95, kEps = 1e-8, kWeightDecay = 0.1;

// Spec 4.1 written out once more in long double, keeping its own state.
struct AdamReference {
  std::vector<Real> param, m, v;
  void step(const std::vector<Real> &grad, Real lr, bool decay, int64_t k, Real clipScale) {
    Real b1k = 1, b2k = 1;
    for (int64_t i = 0; i < k; ++i) {
      b1k *= Real(kBeta1);
      b2k *= Real(kBeta2);
    }
    for (size_t i = 0; i < param.size(); ++i) {
      const Real g = grad[i] * clipScale;
      m[i] = Real(kBeta1) * m[i] + (1 - Real(kBeta1)) * g;
      v[i] = Real(kBeta2) * v[i] + (1 - Real(kBeta2)) * g * g;
      const Real mhat = m[i] / (1 - b1k), vhat = v[i] / (1 - b2k);
      Real update = mhat / (std::sqrt(vhat) + Real(kEps));
      if (decay)
        update += Real(kWeightDecay) * param[i];
      param[i] -= lr * update;
    }
  }
};

TYPED_TEST(OptimizerTest, AdamwTenStepsAgainstReference) {
  using T = TypeParam;
  const int64_t n = 50;
  for (bool decay : {true, false}) {
    for (double clipScale : {1.0, 0.37}) {
      std::vector<T> param = randomVector<T>(n, 1000, -1.0, 1.0), m(n, T(0)), v(n, T(0));
      AdamReference ref{toReal(param), std::vector<Real>(n, 0), std::vector<Real>(n, 0)};
      for (int64_t k = 1; k <= 10; ++k) {
        const auto grad = randomVector<T>(n, 1000 + k, -2.0, 2.0);
        const double lr = 1e-2 * double(k); // a different rate every step
        adamwStep(param.data(), grad.data(), m.data(), v.data(), n, lr, kBeta1, kBeta2, kEps,
                  kWeightDecay, decay, k, clipScale);
        ref.step(toReal(grad), Real(lr), decay, k, Real(clipScale));
        if (k == 1 || k == 10) {
          const std::string what = "step " + std::to_string(k) + (decay ? " decay" : " no decay") +
                                   " clip " + std::to_string(clipScale);
          EXPECT_TRUE(closeByNorm(param, ref.param, tolerance<T>())) << "param, " << what;
          EXPECT_TRUE(closeByNorm(m, ref.m, tolerance<T>())) << "m, " << what;
          EXPECT_TRUE(closeByNorm(v, ref.v, tolerance<T>())) << "v, " << what;
        }
      }
    }
  }
}

TYPED_TEST(OptimizerTest, AdamwResumedAtStep10FromNonzeroMoments) {
  using T = TypeParam;
  const int64_t n = 40;
  std::vector<T> param = randomVector<T>(n, 1020), m = randomVector<T>(n, 1021, -0.5, 0.5),
                 v = randomVector<T>(n, 1022, 1e-4, 0.5);
  const auto grad = randomVector<T>(n, 1023, -2.0, 2.0);
  AdamReference ref{toReal(param), toReal(m), toReal(v)};
  adamwStep(param.data(), grad.data(), m.data(), v.data(), n, 3e-3, kBeta1, kBeta2, kEps,
            kWeightDecay, true, 10, 0.5);
  ref.step(toReal(grad), Real(3e-3), true, 10, Real(0.5));
  EXPECT_TRUE(closeByNorm(param, ref.param, tolerance<T>()));
  EXPECT_TRUE(closeByNorm(m, ref.m, tolerance<T>()));
  EXPECT_TRUE(closeByNorm(v, ref.v, tolerance<T>()));
}

// At step 1 from zero moments, mhat / sqrt(vhat) = sign(g): the step is lr per element (plus the
// decay), whatever the gradient's size. A 0-based bias correction would fail this by far.
TEST(OptimizerTest, AdamwFirstStepIsSignOfGradient) {
  const std::vector<double> grad = {3.0, -1e-3, 250.0, -7.5};
  std::vector<double> param = {1.0, -2.0, 0.5, 0.0}, m(4, 0.0), v(4, 0.0);
  const auto start = param;
  adamwStep(param.data(), grad.data(), m.data(), v.data(), 4, 0.01, kBeta1, kBeta2, kEps,
            kWeightDecay, true, 1, 1.0);
  for (size_t i = 0; i < 4; ++i) {
    const double sign = grad[i] > 0 ? 1.0 : -1.0;
    const double ratio = std::fabs(grad[i]) / (std::fabs(grad[i]) + kEps);
    EXPECT_NEAR(param[i], start[i] - 0.01 * (sign * ratio + kWeightDecay * start[i]), 1e-15) << i;
  }
}

TYPED_TEST(OptimizerTest, SumSquaresAgainstNaiveSum) {
  using T = TypeParam;
  for (int64_t n : {1, 7, 1000, 100003}) {
    const auto x = randomVector<T>(n, 1030 + n, -3.0, 3.0);
    Real want = 0;
    for (T value : x)
      want += Real(value) * Real(value);
    const double got = sumSquares(x.data(), n);
    EXPECT_LT(std::fabs(Real(got) - want) / want, 1e-13) << "n=" << n;
  }
  EXPECT_EQ(sumSquares<T>(nullptr, 0), 0.0);
}

// Spec 4.2 in long double.
Real scheduleReference(int64_t c, Real peak, Real end, int64_t warmup, int64_t total) {
  if (c < warmup)
    return peak * Real(c) / Real(warmup);
  const Real pi = std::acos(Real(-1));
  const int64_t span = total - warmup;
  const Real progress = Real(std::min(c - warmup, span)) / Real(span);
  return end + (peak - end) * Real(0.5) * (1 + std::cos(pi * progress));
}

TEST(OptimizerTest, WarmupCosineAtItsLandmarks) {
  const double peak = 3e-3, end = 1e-5;
  const int64_t warmup = 480, total = 4800;
  EXPECT_EQ(warmupCosineLr(0, peak, end, warmup, total), 0.0) << "the first update has lr 0";
  EXPECT_DOUBLE_EQ(warmupCosineLr(1, peak, end, warmup, total), peak / 480);
  EXPECT_DOUBLE_EQ(warmupCosineLr(warmup - 1, peak, end, warmup, total), peak * 479 / 480);
  EXPECT_DOUBLE_EQ(warmupCosineLr(warmup, peak, end, warmup, total), peak);
  EXPECT_NEAR(warmupCosineLr((warmup + total) / 2, peak, end, warmup, total), (peak + end) / 2,
              1e-18);
  const double last = warmupCosineLr(total - 1, peak, end, warmup, total);
  EXPECT_GT(last, end);
  EXPECT_LT(last, end + (peak - end) * 1e-6);
  EXPECT_DOUBLE_EQ(warmupCosineLr(total, peak, end, warmup, total), end);
  EXPECT_DOUBLE_EQ(warmupCosineLr(total + 1, peak, end, warmup, total), end);
  EXPECT_DOUBLE_EQ(warmupCosineLr(10 * total, peak, end, warmup, total), end);
}

TEST(OptimizerTest, WarmupCosineAgainstClosedForm) {
  struct Case {
    int64_t warmup, total;
  };
  for (Case c : {Case{480, 4800}, Case{10, 100}, Case{0, 100}, Case{1, 2}, Case{7, 8}}) {
    for (int64_t count = 0; count <= c.total + 5; ++count) {
      const double got = warmupCosineLr(count, 1.5e-3, 1e-5, c.warmup, c.total);
      const Real want = scheduleReference(count, Real(1.5e-3), Real(1e-5), c.warmup, c.total);
      // Relative to the peak: the cosine's rounding is absolute, where the rate is far below it.
      EXPECT_LE(std::fabs(Real(got) - want), 1e-15 * Real(1.5e-3))
          << "count " << count << " warmup " << c.warmup << " total " << c.total;
    }
  }
}

TEST(OptimizerTest, WarmupCosineWithoutWarmupOrWithoutDecay) {
  // warmup 0: the first update already has the peak rate.
  EXPECT_DOUBLE_EQ(warmupCosineLr(0, 2e-3, 1e-5, 0, 100), 2e-3);
  EXPECT_DOUBLE_EQ(warmupCosineLr(100, 2e-3, 1e-5, 0, 100), 1e-5);
  // warmup == total: linear warmup, then the (empty) decay is over: `end`, never NaN.
  EXPECT_DOUBLE_EQ(warmupCosineLr(5, 2e-3, 1e-5, 10, 10), 1e-3);
  EXPECT_EQ(warmupCosineLr(10, 2e-3, 1e-5, 10, 10), 1e-5);
  EXPECT_EQ(warmupCosineLr(11, 2e-3, 1e-5, 10, 10), 1e-5);
  EXPECT_EQ(warmupCosineLr(0, 2e-3, 1e-5, 0, 0), 1e-5);
}
} // namespace
} // namespace ttt::cpu::test
