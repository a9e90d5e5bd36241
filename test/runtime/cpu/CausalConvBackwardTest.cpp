// causal_conv backward against central differences of the forward kernel (widths shorter than,
// equal to and longer than the sequence), and float against double.
#include "runtime/backend/cpu/Backward.h"
#include "test/runtime/cpu/GradientTestUtil.h"

namespace ttt::cpu::test {
namespace {
struct ConvCase {
  int64_t batch, seq, dim, width;
};
const ConvCase kCases[] = {{2, 6, 3, 4}, {1, 5, 2, 1}, {2, 3, 2, 5}, {1, 4, 3, 4}};

struct ConvInputs {
  std::vector<double> x, kernel, bias, dy;
};
ConvInputs inputs(const ConvCase &c, uint64_t seed) {
  const int64_t n = c.batch * c.seq * c.dim;
  return {floatExact(n, seed), floatExact(c.width * c.dim, seed + 1), floatExact(c.dim, seed + 2),
          floatExact(n, seed + 3)};
}

TEST(CausalConvBackwardTest, MatchesFiniteDifferences) {
  for (const ConvCase &c : kCases) {
    ConvInputs in = inputs(c, 400 + c.width);
    std::vector<double> dx(in.x.size()), dk(in.kernel.size()), dbias(c.dim);
    causalConvBackward(in.x.data(), in.kernel.data(), in.dy.data(), c.batch, c.seq, c.dim, c.width,
                       dx.data(), dk.data(), dbias.data());
    auto loss = [&] {
      std::vector<double> y(in.x.size());
      causalConv(in.x.data(), in.kernel.data(), in.bias.data(), c.batch, c.seq, c.dim, c.width,
                 y.data());
      return dot(in.dy, y);
    };
    const std::string what = "seq=" + std::to_string(c.seq) + " width=" + std::to_string(c.width);
    EXPECT_TRUE(closeByNorm(dx, centralDifferences(in.x, kStep, loss), kFiniteDifferenceTolerance))
        << "dx, " << what;
    EXPECT_TRUE(
        closeByNorm(dk, centralDifferences(in.kernel, kStep, loss), kFiniteDifferenceTolerance))
        << "dkernel, " << what;
    EXPECT_TRUE(
        closeByNorm(dbias, centralDifferences(in.bias, kStep, loss), kFiniteDifferenceTolerance))
        << "dbias, " << what;
  }
}

TEST(CausalConvBackwardTest, FloatMatchesDouble) {
  for (const ConvCase &c : kCases) {
    const ConvInputs in = inputs(c, 410 + c.width);
    expectFloatMatchesDouble(
        [&](auto tag) {
          using T = decltype(tag);
          const auto x = cast<T>(in.x), kernel = cast<T>(in.kernel), dy = cast<T>(in.dy);
          std::vector<T> dx(x.size()), dk(kernel.size()), dbias(c.dim);
          causalConvBackward(x.data(), kernel.data(), dy.data(), c.batch, c.seq, c.dim, c.width,
                             dx.data(), dk.data(), dbias.data());
          return std::vector<std::vector<T>>{dx, dk, dbias};
        },
        "width=" + std::to_string(c.width));
  }
}

// State passing: with a history the cotangents are those of the conv over [history; x] with the
// first W-1 outputs dropped (their dy zero): dx of x's rows, and dkernel and dbias, bit-identical.
TEST(CausalConvBackwardTest, HistoryIsTheConvOverHistoryAndInput) {
  const int64_t batch = 2, seq = 6, dim = 3, width = 4, h = width - 1;
  const ConvCase c{batch, seq, dim, width};
  ConvInputs in = inputs(c, 420);
  const std::vector<double> hist = floatExact(batch * h * dim, 430);
  std::vector<double> ext, dyExt;
  for (int64_t b = 0; b < batch; ++b) {
    ext.insert(ext.end(), hist.begin() + b * h * dim, hist.begin() + (b + 1) * h * dim);
    ext.insert(ext.end(), in.x.begin() + b * seq * dim, in.x.begin() + (b + 1) * seq * dim);
    dyExt.insert(dyExt.end(), size_t(h * dim), 0.0);
    dyExt.insert(dyExt.end(), in.dy.begin() + b * seq * dim, in.dy.begin() + (b + 1) * seq * dim);
  }
  std::vector<double> dxExt(ext.size()), dkExt(in.kernel.size()), dbExt(dim);
  causalConvBackward(ext.data(), in.kernel.data(), dyExt.data(), batch, seq + h, dim, width,
                     dxExt.data(), dkExt.data(), dbExt.data());
  std::vector<double> dx(in.x.size()), dk(in.kernel.size()), db(dim), dk0(in.kernel.size());
  causalConvBackward(in.x.data(), in.kernel.data(), in.dy.data(), batch, seq, dim, width, dx.data(),
                     dk.data(), db.data(), hist.data());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < seq * dim; ++i)
      ASSERT_EQ(dx[b * seq * dim + i], dxExt[(b * (seq + h) + h) * dim + i]) << b << " " << i;
  EXPECT_EQ(dk, dkExt);
  EXPECT_EQ(db, dbExt);
  // the history reaches the kernel's cotangent: without it dkernel differs
  causalConvBackward(in.x.data(), in.kernel.data(), in.dy.data(), batch, seq, dim, width, dx.data(),
                     dk0.data(), db.data());
  EXPECT_NE(dk0, dk);
}

TEST(CausalConvBackwardTest, BadWidthThrows) {
  std::vector<double> v(4, 1.0);
  EXPECT_THROW(
      causalConvBackward(v.data(), v.data(), v.data(), 1, 2, 2, 0, v.data(), v.data(), v.data()),
      std::invalid_argument);
}
} // namespace
} // namespace ttt::cpu::test
