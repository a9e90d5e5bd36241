// unary backward for every UnaryOp against central differences of the forward, float against
// double, relu at 0; sum_to_shape against a naive loop and as the gradient of a broadcast.
#include "runtime/backend/cpu/Backward.h"
#include "test/runtime/cpu/GradientTestUtil.h"

#include <stdexcept>

namespace ttt::cpu::test {
namespace {
struct UnaryCase {
  UnaryOp op;
  const char *name;
  double lo, hi, alpha;
};
// Inputs stay inside each op's domain; relu's are moved away from its kink below.
const UnaryCase kUnaryCases[] = {
    {UnaryOp::neg, "neg", -3, 3, 0},
    {UnaryOp::exp, "exp", -3, 3, 0},
    {UnaryOp::log, "log", 0.3, 4, 0},
    {UnaryOp::sqrt, "sqrt", 0.3, 4, 0},
    {UnaryOp::rsqrt, "rsqrt", 0.3, 4, 0},
    {UnaryOp::reciprocal, "reciprocal", 0.3, 4, 0},
    {UnaryOp::sigmoid, "sigmoid", -6, 6, 0},
    {UnaryOp::silu, "silu", -6, 6, 0},
    {UnaryOp::gelu_tanh, "gelu_tanh", -5, 5, 0},
    {UnaryOp::relu, "relu", -3, 3, 0},
    {UnaryOp::scale, "scale", -3, 3, -1.7},
    {UnaryOp::add_scalar, "add_scalar", -3, 3, 0.3},
};
constexpr int64_t kN = 64;

std::vector<double> unaryInputs(const UnaryCase &c, uint64_t seed) {
  auto x = floatExact(kN, seed, c.lo, c.hi);
  if (c.op == UnaryOp::relu)
    for (double &v : x)
      if (std::fabs(v) < 0.1)
        v += v < 0 ? -0.25 : 0.25;
  return x;
}

TEST(ElementwiseBackwardTest, UnaryMatchesFiniteDifferences) {
  for (const UnaryCase &c : kUnaryCases) {
    auto x = unaryInputs(c, 700 + int(c.op));
    const auto dy = floatExact(kN, 720 + int(c.op));
    std::vector<double> y(kN), dx(kN);
    unary(c.op, x.data(), kN, c.alpha, y.data());
    unaryBackward(c.op, x.data(), y.data(), dy.data(), kN, c.alpha, dx.data());
    auto loss = [&] {
      std::vector<double> out(kN);
      unary(c.op, x.data(), kN, c.alpha, out.data());
      return dot(dy, out);
    };
    EXPECT_TRUE(closeByNorm(dx, centralDifferences(x, kStep, loss), kFiniteDifferenceTolerance))
        << c.name;
  }
}

TEST(ElementwiseBackwardTest, UnaryFloatMatchesDoubleAndInPlace) {
  for (const UnaryCase &c : kUnaryCases) {
    const auto x = unaryInputs(c, 740 + int(c.op));
    const auto dy = floatExact(kN, 760 + int(c.op));
    expectFloatMatchesDouble(
        [&](auto tag) {
          using T = decltype(tag);
          const auto xT = cast<T>(x), dyT = cast<T>(dy);
          std::vector<T> y(kN), dx(kN);
          unary(c.op, xT.data(), kN, c.alpha, y.data());
          unaryBackward(c.op, xT.data(), y.data(), dyT.data(), kN, c.alpha, dx.data());
          auto inPlace = dyT;
          unaryBackward(c.op, xT.data(), y.data(), inPlace.data(), kN, c.alpha, inPlace.data());
          EXPECT_TRUE(bitwiseEqual(inPlace, dx)) << c.name << ": dx over dy differs";
          return std::vector<std::vector<T>>{dx};
        },
        c.name);
  }
}

TEST(ElementwiseBackwardTest, ReluDerivativeAtZeroIsZero) {
  const std::vector<double> x = {0.0, -0.0, 1e-300, -1e-300}, dy = {2.0, 3.0, 5.0, 7.0};
  std::vector<double> y(4), dx(4);
  unary(UnaryOp::relu, x.data(), 4, 0.0, y.data());
  unaryBackward(UnaryOp::relu, x.data(), y.data(), dy.data(), 4, 0.0, dx.data());
  EXPECT_EQ(dx, (std::vector<double>{0.0, 0.0, 5.0, 0.0}));
}

// The reference maps every element of x to its coordinates and drops the broadcast ones.
std::vector<Real> sumToShapeReference(const std::vector<double> &x, const Shape &from,
                                      const Shape &to) {
  std::vector<Real> y(numElements(to), 0);
  for (int64_t linear = 0; linear < int64_t(x.size()); ++linear) {
    int64_t rest = linear, offset = 0, stride = 1;
    for (size_t i = 0; i < from.size(); ++i) {
      const size_t d = from.size() - 1 - i;
      const int64_t coord = rest % from[d];
      rest /= from[d];
      if (i < to.size()) {
        const int64_t extent = to[to.size() - 1 - i];
        offset += (extent == 1 ? 0 : coord) * stride;
        stride *= extent;
      }
    }
    y[offset] += x[linear];
  }
  return y;
}

struct SumCase {
  Shape from, to;
};
const SumCase kSumCases[] = {
    {{2, 3, 4}, {4}},          // leading dims
    {{2, 3, 4}, {3, 4}},       // one leading dim
    {{2, 3, 4}, {2, 1, 4}},    // a middle size-1 dim
    {{2, 3, 4}, {1, 3, 1}},    // size-1 dims at both ends
    {{5, 1, 3, 2}, {1, 3, 1}}, // from has a size-1 dim too
    {{2, 3, 4}, {}},           // rank-0 target
    {{2, 3, 4}, {1}},          // everything into one element, rank 1
    {{2, 3, 4}, {2, 3, 4}},    // identity
    {{}, {}},                  // scalar to scalar
    {{7}, {1}},
    {{2, 1, 3, 1, 2, 3}, {3, 1, 1, 3}}, // rank 6
};

std::string shapeText(const Shape &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

TEST(ElementwiseBackwardTest, SumToShapeAgainstNaiveLoopAndFloat) {
  for (const SumCase &c : kSumCases) {
    const auto x = floatExact(numElements(c.from), 800 + numElements(c.from));
    std::vector<double> y(numElements(c.to), -1.0);
    sumToShape(x.data(), c.from, c.to, y.data());
    const std::string what = shapeText(c.from) + " -> " + shapeText(c.to);
    EXPECT_TRUE(closeByNorm(y, sumToShapeReference(x, c.from, c.to), 1e-15)) << what;
    std::vector<float> yFloat(y.size());
    const auto xFloat = cast<float>(x);
    sumToShape(xFloat.data(), c.from, c.to, yFloat.data());
    EXPECT_TRUE(closeByNorm(yFloat, toReal(y), kFloatAgainstDoubleTolerance)) << what;
  }
}

// sum_to_shape is the gradient of broadcasting: here of a * b, a of shape `to`, b of shape `from`.
TEST(ElementwiseBackwardTest, SumToShapeMatchesFiniteDifferencesOfABroadcast) {
  for (const SumCase &c : kSumCases) {
    auto a = floatExact(numElements(c.to), 820);
    const auto b = floatExact(numElements(c.from), 821), dy = floatExact(numElements(c.from), 822);
    std::vector<double> da(a.size());
    auto loss = [&] {
      std::vector<double> out(b.size());
      binary(BinaryOp::mul, a.data(), c.to, b.data(), c.from, out.data());
      return dot(dy, out);
    };
    // d/da of sum(dy * a * b) is sum_to_shape(dy * b).
    std::vector<double> dyb(b.size());
    for (size_t i = 0; i < b.size(); ++i)
      dyb[i] = dy[i] * b[i];
    sumToShape(dyb.data(), c.from, c.to, da.data());
    EXPECT_TRUE(closeByNorm(da, centralDifferences(a, kStep, loss), kFiniteDifferenceTolerance))
        << shapeText(c.from) << " -> " << shapeText(c.to);
  }
}

TEST(ElementwiseBackwardTest, SumToShapeRejectsShapesThatDoNotBroadcast) {
  std::vector<double> x(24, 1.0), y(24);
  EXPECT_THROW(sumToShape(x.data(), {2, 3, 4}, {3}, y.data()), std::invalid_argument);
  EXPECT_THROW(sumToShape(x.data(), {2, 3, 4}, {2, 3}, y.data()), std::invalid_argument);
  EXPECT_THROW(sumToShape(x.data(), {3, 4}, {2, 3, 4}, y.data()), std::invalid_argument);
}
} // namespace
} // namespace ttt::cpu::test
