// Helpers for the CPU kernel tests: seeded random inputs, per-type tolerances, and a comparison
// against a long-double reference that reports the numbers that differ.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace ttt::cpu::test {
using Real = long double;

// Relative error by norm allowed against the long-double reference.
template <typename T> constexpr double tolerance();
template <> constexpr double tolerance<float>() { return 1e-5; }
template <> constexpr double tolerance<double>() { return 1e-12; }

using FloatTypes = ::testing::Types<float, double>;

// Uniform values in [lo, hi) from a fixed seed; never all zeros.
template <typename T>
std::vector<T> randomVector(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(n);
  for (auto &x : v)
    x = T(dist(gen));
  return v;
}

inline std::vector<int32_t> randomTokens(size_t n, uint64_t seed, int32_t vocab) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> v(n);
  for (auto &x : v)
    x = dist(gen);
  return v;
}

// ||got - want|| / ||want|| (absolute when want is zero) must be below tol; on failure the
// message names the worst element.
template <typename T>
::testing::AssertionResult closeByNorm(const std::vector<T> &got, const std::vector<Real> &want,
                                       double tol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure()
           << "size " << got.size() << " != reference size " << want.size();
  Real diff2 = 0, ref2 = 0, worst = -1;
  size_t worstAt = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const Real d = Real(got[i]) - want[i];
    if (std::isnan(d))
      return ::testing::AssertionFailure()
             << "NaN at " << i << ": got " << got[i] << ", want " << double(want[i]);
    diff2 += d * d;
    ref2 += want[i] * want[i];
    if (std::fabs(d) > worst) {
      worst = std::fabs(d);
      worstAt = i;
    }
  }
  const Real err = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  if (err <= tol)
    return ::testing::AssertionSuccess();
  std::ostringstream os;
  os.precision(17);
  os << "relative error " << double(err) << " > " << tol << "; worst element " << worstAt
     << ": got " << double(got[worstAt]) << ", want " << double(want[worstAt]);
  return ::testing::AssertionFailure() << os.str();
}

template <typename T> bool bitwiseEqual(const std::vector<T> &a, const std::vector<T> &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}
} // namespace ttt::cpu::test
