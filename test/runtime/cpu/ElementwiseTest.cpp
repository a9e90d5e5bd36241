// binary (numpy broadcasting on either side, different ranks, up to rank 6) and unary ops.
#include "runtime/backend/cpu/Kernels.h"
#include "test/runtime/cpu/KernelTestUtil.h"

#include <limits>
#include <stdexcept>

namespace ttt::cpu::test {
namespace {
template <typename T> class ElementwiseTest : public ::testing::Test {};
TYPED_TEST_SUITE(ElementwiseTest, FloatTypes);

int64_t product(const Shape &s) {
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  return n;
}

// The reference decomposes every output index into coordinates and maps each coordinate to the
// operand (coordinate 0 where the operand's dimension is 1 or missing).
int64_t operandOffset(const Shape &out, int64_t linear, const Shape &operand) {
  int64_t offset = 0, stride = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    const size_t d = out.size() - 1 - i;
    const int64_t coord = linear % out[d];
    linear /= out[d];
    if (i < operand.size()) {
      const int64_t extent = operand[operand.size() - 1 - i];
      offset += (extent == 1 ? 0 : coord) * stride;
      stride *= extent;
    }
  }
  return offset;
}

Real apply(BinaryOp op, Real a, Real b) {
  switch (op) {
  case BinaryOp::add:
    return a + b;
  case BinaryOp::sub:
    return a - b;
  case BinaryOp::mul:
    return a * b;
  case BinaryOp::div:
    return a / b;
  case BinaryOp::max:
    return a > b ? a : b;
  }
  return 0;
}

TYPED_TEST(ElementwiseTest, BinaryBroadcastsAgainstReference) {
  using T = TypeParam;
  struct Case {
    Shape a, b, out;
  };
  const std::vector<Case> cases = {
      {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}},
      {{2, 3, 4}, {4}, {2, 3, 4}},
      {{4}, {2, 3, 4}, {2, 3, 4}},
      {{2, 1, 4}, {3, 1}, {2, 3, 4}},
      {{1}, {5, 1, 3}, {5, 1, 3}},
      {{}, {2, 3}, {2, 3}},
      {{2, 3}, {}, {2, 3}},
      {{}, {}, {}},
      {{6, 1}, {1, 7}, {6, 7}},
      {{2, 1, 3, 1, 2, 1}, {1, 4, 1, 5, 1, 3}, {2, 4, 3, 5, 2, 3}},
      {{3, 1, 1}, {1, 1}, {3, 1, 1}},
  };
  uint64_t seed = 90;
  for (const Case &c : cases) {
    EXPECT_EQ(broadcastShape(c.a, c.b), c.out);
    const auto a = randomVector<T>(product(c.a), ++seed);
    // Divisors kept away from zero.
    const auto b = randomVector<T>(product(c.b), ++seed, 0.5, 2.0);
    for (BinaryOp op :
         {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::max}) {
      std::vector<T> out(product(c.out));
      binary(op, a.data(), c.a, b.data(), c.b, out.data());
      std::vector<Real> want(out.size());
      for (int64_t i = 0; i < int64_t(want.size()); ++i)
        want[i] = apply(op, a[operandOffset(c.out, i, c.a)], b[operandOffset(c.out, i, c.b)]);
      EXPECT_TRUE(closeByNorm(out, want, tolerance<T>()))
          << "op " << int(op) << " shapes " << testing::PrintToString(c.a) << " and "
          << testing::PrintToString(c.b);
    }
  }
}

TYPED_TEST(ElementwiseTest, BinaryInPlaceOnTheFullShapeOperand) {
  using T = TypeParam;
  const Shape full = {4, 5}, row = {5};
  auto a = randomVector<T>(20, 120);
  const auto b = randomVector<T>(5, 121);
  std::vector<T> expected(20);
  binary(BinaryOp::mul, a.data(), full, b.data(), row, expected.data());
  binary(BinaryOp::mul, a.data(), full, b.data(), row, a.data());
  EXPECT_TRUE(bitwiseEqual(a, expected));
}

TYPED_TEST(ElementwiseTest, IncompatibleShapesAreRejected) {
  using T = TypeParam;
  EXPECT_EQ(broadcastShape({2, 3}, {4}), Shape{});
  EXPECT_EQ(broadcastShape({2, 3}, {3, 3}), Shape{});
  std::vector<T> a(6, T(1)), b(4, T(1)), out(24);
  EXPECT_THROW(binary(BinaryOp::add, a.data(), {2, 3}, b.data(), {4}, out.data()),
               std::invalid_argument);
  std::vector<T> seven(1, T(1));
  EXPECT_THROW(
      binary(BinaryOp::add, seven.data(), {1, 1, 1, 1, 1, 1, 1}, seven.data(), {1}, seven.data()),
      std::invalid_argument);
}

TYPED_TEST(ElementwiseTest, MaxPropagatesNaN) {
  using T = TypeParam;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> a = {nan, 1, 2}, b = {0, nan, 1};
  std::vector<T> out(3);
  binary(BinaryOp::max, a.data(), {3}, b.data(), {3}, out.data());
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_TRUE(std::isnan(out[1]));
  EXPECT_EQ(out[2], T(2));
}

Real unaryReference(UnaryOp op, Real x, Real alpha) {
  switch (op) {
  case UnaryOp::neg:
    return -x;
  case UnaryOp::exp:
    return std::exp(x);
  case UnaryOp::log:
    return std::log(x);
  case UnaryOp::sqrt:
    return std::sqrt(x);
  case UnaryOp::rsqrt:
    return 1 / std::sqrt(x);
  case UnaryOp::reciprocal:
    return 1 / x;
  case UnaryOp::sigmoid:
    return 1 / (1 + std::exp(-x));
  case UnaryOp::silu:
    return x / (1 + std::exp(-x));
  case UnaryOp::gelu_tanh: {
    const Real pi = std::acos(Real(-1));
    return Real(0.5) * x * (1 + std::tanh(std::sqrt(2 / pi) * (x + Real(0.044715) * x * x * x)));
  }
  case UnaryOp::relu:
    return x > 0 ? x : 0;
  case UnaryOp::scale:
    return alpha * x;
  case UnaryOp::add_scalar:
    return x + alpha;
  }
  return 0;
}

TYPED_TEST(ElementwiseTest, UnaryAgainstReference) {
  using T = TypeParam;
  const auto mixed = randomVector<T>(301, 130, -6.0, 6.0);
  const auto positive = randomVector<T>(301, 131, 0.05, 20.0);
  const double alpha = -1.375;
  for (UnaryOp op : {UnaryOp::neg, UnaryOp::exp, UnaryOp::log, UnaryOp::sqrt, UnaryOp::rsqrt,
                     UnaryOp::reciprocal, UnaryOp::sigmoid, UnaryOp::silu, UnaryOp::gelu_tanh,
                     UnaryOp::relu, UnaryOp::scale, UnaryOp::add_scalar}) {
    const bool needsPositive = op == UnaryOp::log || op == UnaryOp::sqrt || op == UnaryOp::rsqrt ||
                               op == UnaryOp::reciprocal;
    const auto &x = needsPositive ? positive : mixed;
    std::vector<T> y(x.size());
    unary(op, x.data(), int64_t(x.size()), alpha, y.data());
    std::vector<Real> want(x.size());
    for (size_t i = 0; i < x.size(); ++i)
      want[i] = unaryReference(op, x[i], alpha);
    EXPECT_TRUE(closeByNorm(y, want, tolerance<T>())) << "unary op " << int(op);
    auto inPlace = x;
    unary(op, inPlace.data(), int64_t(x.size()), alpha, inPlace.data());
    EXPECT_TRUE(bitwiseEqual(inPlace, y)) << "in place differs, op " << int(op);
  }
}

TYPED_TEST(ElementwiseTest, SigmoidAndSiluSaturateWithoutNaN) {
  using T = TypeParam;
  const std::vector<T> x = {T(-800), T(800), T(0)};
  std::vector<T> s(3), silu(3);
  unary(UnaryOp::sigmoid, x.data(), 3, 0.0, s.data());
  unary(UnaryOp::silu, x.data(), 3, 0.0, silu.data());
  EXPECT_EQ(s[0], T(0));
  EXPECT_EQ(s[1], T(1));
  EXPECT_EQ(s[2], T(0.5));
  EXPECT_EQ(silu[0], T(0)); // -800 / inf is -0
  EXPECT_EQ(silu[1], T(800));
}
} // namespace
} // namespace ttt::cpu::test
