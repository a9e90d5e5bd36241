// matmul: every transpose combination, batches with gaps and broadcast (stride 0) operands,
// accumulate, alpha, an empty inner dimension, and C's old contents ignored without accumulate.
#include "runtime/backend/cpu/Kernels.h"
#include "test/runtime/cpu/KernelTestUtil.h"

#include <limits>

namespace ttt::cpu::test {
namespace {
template <typename T> class MatmulTest : public ::testing::Test {};
TYPED_TEST_SUITE(MatmulTest, FloatTypes);

size_t bufferSize(int64_t batch, int64_t stride, int64_t matrix) {
  return size_t(batch > 0 ? (batch - 1) * stride + matrix : 0);
}

// The naive triple loop over the stored layouts, in long double, starting from C's contents.
template <typename T>
std::vector<Real> reference(const MatmulShape &s, double alpha, const std::vector<T> &a,
                            const std::vector<T> &b, bool accumulate, const std::vector<T> &c) {
  std::vector<Real> out(c.begin(), c.end());
  for (int64_t bi = 0; bi < s.batch; ++bi)
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) {
        Real sum = 0;
        for (int64_t p = 0; p < s.k; ++p) {
          const Real av =
              s.transA ? a[bi * s.strideA + p * s.m + i] : a[bi * s.strideA + i * s.k + p];
          const Real bv =
              s.transB ? b[bi * s.strideB + j * s.k + p] : b[bi * s.strideB + p * s.n + j];
          sum += av * bv;
        }
        Real &cv = out[bi * s.strideC + i * s.n + j];
        cv = Real(alpha) * sum + (accumulate ? cv : Real(0));
      }
  return out;
}

template <typename T>
void checkCase(const MatmulShape &s, double alpha, bool accumulate, uint64_t seed) {
  const auto a = randomVector<T>(bufferSize(s.batch, s.strideA, s.m * s.k), seed);
  const auto b = randomVector<T>(bufferSize(s.batch, s.strideB, s.k * s.n), seed + 1);
  auto c = randomVector<T>(bufferSize(s.batch, s.strideC, s.m * s.n), seed + 2);
  const auto want = reference(s, alpha, a, b, accumulate, c);
  matmul<T>(s, T(alpha), a.data(), b.data(), accumulate, c.data());
  EXPECT_TRUE(closeByNorm(c, want, tolerance<T>()))
      << "m=" << s.m << " n=" << s.n << " k=" << s.k << " batch=" << s.batch
      << " transA=" << s.transA << " transB=" << s.transB << " strides " << s.strideA << ","
      << s.strideB << "," << s.strideC << " alpha=" << alpha << " accumulate=" << accumulate;
}

TYPED_TEST(MatmulTest, AllTransposesAgainstReference) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (auto [m, n, k] : {std::tuple{5, 7, 9}, std::tuple{1, 1, 1}, std::tuple{33, 47, 65},
                             std::tuple{64, 3, 128}}) {
        MatmulShape s;
        s.m = m, s.n = n, s.k = k, s.transA = ta, s.transB = tb;
        checkCase<TypeParam>(s, 1.0, false, 10 + m);
        checkCase<TypeParam>(s, -0.75, true, 20 + m);
      }
}

TYPED_TEST(MatmulTest, BatchesWithGapsAndBroadcastOperands) {
  const int64_t m = 6, n = 5, k = 4;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      MatmulShape s;
      s.batch = 3, s.m = m, s.n = n, s.k = k, s.transA = ta, s.transB = tb;
      // Strides larger than a matrix: the gaps must be left alone.
      s.strideA = m * k + 2, s.strideB = k * n + 5, s.strideC = m * n + 3;
      checkCase<TypeParam>(s, 1.0, false, 31);
      checkCase<TypeParam>(s, 0.5, true, 32);
      // A broadcast over the batch (shared weights), then B.
      s.strideA = 0;
      checkCase<TypeParam>(s, 1.0, false, 33);
      s.strideA = m * k, s.strideB = 0;
      checkCase<TypeParam>(s, 2.0, true, 34);
      // C broadcast with accumulate sums every batch entry into one matrix.
      s.strideB = k * n, s.strideC = 0;
      checkCase<TypeParam>(s, 1.0, true, 35);
    }
}

TYPED_TEST(MatmulTest, WithoutAccumulateOldContentsOfCAreIgnored) {
  using T = TypeParam;
  MatmulShape s;
  s.batch = 2, s.m = 4, s.n = 3, s.k = 5, s.strideA = 20, s.strideB = 15, s.strideC = 12;
  const auto a = randomVector<T>(40, 41), b = randomVector<T>(30, 42);
  std::vector<T> c(24, std::numeric_limits<T>::quiet_NaN());
  const auto want = reference(s, 1.0, a, b, false, std::vector<T>(24, T(0)));
  matmul<T>(s, T(1), a.data(), b.data(), false, c.data());
  EXPECT_TRUE(closeByNorm(c, want, tolerance<T>()));
}

TYPED_TEST(MatmulTest, EmptyInnerDimensionGivesZeroOrKeepsC) {
  using T = TypeParam;
  MatmulShape s;
  s.batch = 2, s.m = 3, s.n = 2, s.k = 0, s.strideA = 0, s.strideB = 0, s.strideC = 6;
  auto c = randomVector<T>(12, 43);
  const auto before = c;
  matmul<T>(s, T(1), nullptr, nullptr, true, c.data());
  EXPECT_TRUE(bitwiseEqual(c, before));
  matmul<T>(s, T(1), nullptr, nullptr, false, c.data());
  for (T v : c)
    EXPECT_EQ(v, T(0));
}
} // namespace
} // namespace ttt::cpu::test
