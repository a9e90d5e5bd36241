// transpose (every permutation of rank 3, rank 6, rank 1), slice, insert, tril, fill.
#include "runtime/backend/cpu/Kernels.h"
#include "test/runtime/cpu/KernelTestUtil.h"

#include <algorithm>
#include <stdexcept>

namespace ttt::cpu::test {
namespace {
template <typename T> class LayoutTest : public ::testing::Test {};
TYPED_TEST_SUITE(LayoutTest, FloatTypes);

std::vector<int64_t> coordsOf(int64_t linear, const Shape &shape) {
  std::vector<int64_t> c(shape.size());
  for (int d = int(shape.size()) - 1; d >= 0; --d) {
    c[d] = linear % shape[d];
    linear /= shape[d];
  }
  return c;
}

int64_t linearOf(const std::vector<int64_t> &c, const Shape &shape) {
  int64_t linear = 0;
  for (size_t d = 0; d < shape.size(); ++d)
    linear = linear * shape[d] + c[d];
  return linear;
}

template <typename T> void checkTranspose(const Shape &shape, const std::vector<int> &perm) {
  const int64_t n = numElements(shape);
  const auto x = randomVector<T>(n, 150 + n);
  std::vector<T> y(n);
  transpose(x.data(), shape, perm, y.data());
  Shape outShape(shape.size());
  for (size_t d = 0; d < shape.size(); ++d)
    outShape[d] = shape[perm[d]];
  // y[c_perm[0], ..., c_perm[r-1]] = x[c_0, ..., c_{r-1}]: a pure move, so exact.
  for (int64_t i = 0; i < n; ++i) {
    const auto c = coordsOf(i, shape);
    std::vector<int64_t> out(shape.size());
    for (size_t d = 0; d < shape.size(); ++d)
      out[d] = c[perm[d]];
    ASSERT_EQ(y[linearOf(out, outShape)], x[i])
        << "shape " << testing::PrintToString(shape) << " perm " << testing::PrintToString(perm);
  }
}

TYPED_TEST(LayoutTest, TransposeEveryPermutationOfRank3) {
  std::vector<int> perm = {0, 1, 2};
  do
    checkTranspose<TypeParam>({2, 3, 4}, perm);
  while (std::next_permutation(perm.begin(), perm.end()));
}

TYPED_TEST(LayoutTest, TransposeRank6Rank2Rank1AndUnitDims) {
  checkTranspose<TypeParam>({2, 3, 1, 2, 4, 3}, {4, 0, 5, 2, 1, 3});
  checkTranspose<TypeParam>({5, 7}, {1, 0});
  checkTranspose<TypeParam>({9}, {0});
  checkTranspose<TypeParam>({1, 6, 1}, {2, 1, 0});
}

TYPED_TEST(LayoutTest, TransposeRejectsBadPermutations) {
  using T = TypeParam;
  std::vector<T> x(6), y(6);
  EXPECT_THROW(transpose(x.data(), {2, 3}, {0, 0}, y.data()), std::invalid_argument);
  EXPECT_THROW(transpose(x.data(), {2, 3}, {0}, y.data()), std::invalid_argument);
  EXPECT_THROW(transpose(x.data(), {2, 3}, {1, 2}, y.data()), std::invalid_argument);
}

TYPED_TEST(LayoutTest, SliceAndInsertAlongEveryAxis) {
  using T = TypeParam;
  const Shape shape = {3, 4, 5};
  const auto x = randomVector<T>(60, 160);
  for (int axis = 0; axis < 3; ++axis) {
    const int64_t start = 1, size = shape[axis] - 2;
    Shape part = shape;
    part[axis] = size;
    std::vector<T> y(numElements(part));
    slice(x.data(), shape, axis, start, size, y.data());
    for (int64_t i = 0; i < int64_t(y.size()); ++i) {
      auto c = coordsOf(i, part);
      c[axis] += start;
      ASSERT_EQ(y[i], x[linearOf(c, shape)]) << "axis " << axis << " element " << i;
    }
    // Inserting the slice into zeros puts it back where it came from and nowhere else.
    std::vector<T> dst(60, T(0));
    insert(y.data(), shape, axis, start, size, dst.data());
    for (int64_t i = 0; i < 60; ++i) {
      const auto c = coordsOf(i, shape);
      const bool inside = c[axis] >= start && c[axis] < start + size;
      ASSERT_EQ(dst[i], inside ? x[i] : T(0)) << "axis " << axis << " element " << i;
    }
  }
}

TYPED_TEST(LayoutTest, SliceAndInsertRejectOutOfRange) {
  using T = TypeParam;
  std::vector<T> x(12), y(12);
  EXPECT_THROW(slice(x.data(), {3, 4}, 1, 2, 3, y.data()), std::invalid_argument);
  EXPECT_THROW(slice(x.data(), {3, 4}, 2, 0, 1, y.data()), std::invalid_argument);
  EXPECT_THROW(insert(x.data(), {3, 4}, 0, -1, 2, y.data()), std::invalid_argument);
}

TYPED_TEST(LayoutTest, TrilKeepsTheDiagonal) {
  using T = TypeParam;
  const int64_t matrices = 3, n = 5;
  const auto x = randomVector<T>(matrices * n * n, 170, 0.5, 1.5);
  std::vector<T> y(x.size());
  tril(x.data(), matrices, n, y.data());
  for (int64_t m = 0; m < matrices; ++m)
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < n; ++c) {
        const int64_t i = (m * n + r) * n + c;
        ASSERT_EQ(y[i], c <= r ? x[i] : T(0)) << "m=" << m << " r=" << r << " c=" << c;
      }
  auto inPlace = x;
  tril(inPlace.data(), matrices, n, inPlace.data());
  EXPECT_TRUE(bitwiseEqual(inPlace, y));
}

TYPED_TEST(LayoutTest, FillAndNumElements) {
  using T = TypeParam;
  std::vector<T> y(17, T(3));
  fill(y.data(), 17, -0.25);
  for (T v : y)
    EXPECT_EQ(v, T(-0.25));
  EXPECT_EQ(numElements({}), 1);
  EXPECT_EQ(numElements({2, 3, 4}), 24);
  EXPECT_EQ(numElements({2, 0}), 0);
}
} // namespace
} // namespace ttt::cpu::test
