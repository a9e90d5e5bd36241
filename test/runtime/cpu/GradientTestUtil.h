// Helpers for the backward-kernel tests: inputs that float and double see identically, central
// finite differences of a scalar loss, and the float-against-double comparison.
#pragma once

#include "test/runtime/cpu/KernelTestUtil.h"

namespace ttt::cpu::test {
// Relative error by norm allowed between a double backward kernel and central differences of
// its forward kernel, and between the float and the double backward kernels.
constexpr double kFiniteDifferenceTolerance = 1e-7;
constexpr double kFloatAgainstDoubleTolerance = 1e-5;
// Truncation error ~ h^2 |f'''| and rounding error ~ 1e-16 |L| / h are both near 1e-11 here.
constexpr double kStep = 1e-5;

// Uniform values in [lo, hi) that are exactly representable in float, as doubles.
inline std::vector<double> floatExact(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  const auto values = randomVector<float>(n, seed, lo, hi);
  return std::vector<double>(values.begin(), values.end());
}

template <typename T> std::vector<T> cast(const std::vector<double> &x) {
  return std::vector<T>(x.begin(), x.end());
}

template <typename T> std::vector<Real> toReal(const std::vector<T> &x) {
  return std::vector<Real>(x.begin(), x.end());
}

// sum_i a[i] * b[i] in long double: the scalar loss whose gradient is the vector-Jacobian product
// with cotangent a.
inline Real dot(const std::vector<double> &a, const std::vector<double> &b) {
  Real sum = 0;
  for (size_t i = 0; i < a.size(); ++i)
    sum += Real(a[i]) * Real(b[i]);
  return sum;
}

// d loss / d x[i] for every i by central differences; x is restored afterwards.
template <typename F>
std::vector<Real> centralDifferences(std::vector<double> &x, double h, F loss) {
  std::vector<Real> gradient(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = x[i];
    const Real lossUp = loss();
    x[i] = saved - h;
    const double down = x[i];
    const Real lossDown = loss();
    x[i] = saved;
    gradient[i] = (lossUp - lossDown) / (Real(up) - Real(down));
  }
  return gradient;
}

// `run(T{})` returns every output of a backward kernel run in T on the same (float-exact)
// inputs; each float output must match the double one.
template <typename F> void expectFloatMatchesDouble(F run, const std::string &what) {
  const std::vector<std::vector<double>> wanted = run(double{});
  const std::vector<std::vector<float>> got = run(float{});
  ASSERT_EQ(got.size(), wanted.size());
  for (size_t k = 0; k < got.size(); ++k)
    EXPECT_TRUE(closeByNorm(got[k], toReal(wanted[k]), kFloatAgainstDoubleTolerance))
        << what << ", output " << k;
}
} // namespace ttt::cpu::test
