// causal_conv: zero history before t = 0, widths 1, typical, and wider than the sequence.
#include "runtime/backend/cpu/Kernels.h"
#include "test/runtime/cpu/KernelTestUtil.h"

namespace ttt::cpu::test {
namespace {
template <typename T> class CausalConvTest : public ::testing::Test {};
TYPED_TEST_SUITE(CausalConvTest, FloatTypes);

template <typename T>
std::vector<Real> reference(const std::vector<T> &x, const std::vector<T> &k,
                            const std::vector<T> &bias, int64_t batch, int64_t seq, int64_t dim,
                            int64_t width) {
  std::vector<Real> y(x.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t)
      for (int64_t c = 0; c < dim; ++c) {
        Real sum = bias[c];
        for (int64_t j = 0; j < width; ++j) {
          const int64_t src = t - width + 1 + j;
          const Real xv = src < 0 ? Real(0) : Real(x[(b * seq + src) * dim + c]);
          sum += Real(k[j * dim + c]) * xv;
        }
        y[(b * seq + t) * dim + c] = sum;
      }
  return y;
}

TYPED_TEST(CausalConvTest, AgainstReference) {
  using T = TypeParam;
  for (auto [batch, seq, dim, width] :
       {std::tuple{2, 9, 5, 4}, std::tuple{1, 9, 5, 12}, std::tuple{3, 7, 2, 1},
        std::tuple{2, 1, 3, 4}, std::tuple{2, 64, 16, 4}}) {
    const auto x = randomVector<T>(batch * seq * dim, 70 + width);
    const auto k = randomVector<T>(width * dim, 71 + width);
    const auto bias = randomVector<T>(dim, 72 + width);
    std::vector<T> y(x.size());
    causalConv(x.data(), k.data(), bias.data(), batch, seq, dim, width, y.data());
    EXPECT_TRUE(closeByNorm(y, reference(x, k, bias, batch, seq, dim, width), tolerance<T>()))
        << "batch=" << batch << " seq=" << seq << " dim=" << dim << " width=" << width;
  }
}

TYPED_TEST(CausalConvTest, FirstOutputSeesOnlyTheLastTap) {
  using T = TypeParam;
  // y[0] = bias + k[W-1] * x[0]: the other taps fall before the sequence.
  const int64_t dim = 3, width = 4, seq = 2;
  const auto x = randomVector<T>(seq * dim, 73);
  const auto k = randomVector<T>(width * dim, 74);
  const auto bias = randomVector<T>(dim, 75);
  std::vector<T> y(seq * dim);
  causalConv(x.data(), k.data(), bias.data(), 1, seq, dim, width, y.data());
  for (int64_t c = 0; c < dim; ++c)
    EXPECT_EQ(y[c], T(double(bias[c]) + double(k[(width - 1) * dim + c]) * double(x[c])));
}

// State passing: a history [B, W-1, D] before t = 0 gives exactly the conv over [history; x] with
// the first W-1 outputs dropped (the same sum in the same order: bit-identical).
TYPED_TEST(CausalConvTest, HistoryIsTheConvOverHistoryAndInput) {
  using T = TypeParam;
  const int64_t batch = 2, seq = 7, dim = 5, width = 4, h = width - 1;
  const auto x = randomVector<T>(batch * seq * dim, 76);
  const auto hist = randomVector<T>(batch * h * dim, 77);
  const auto k = randomVector<T>(width * dim, 78);
  const auto bias = randomVector<T>(dim, 79);
  std::vector<T> ext, yExt(batch * (seq + h) * dim), y(x.size());
  for (int64_t b = 0; b < batch; ++b) {
    ext.insert(ext.end(), hist.begin() + b * h * dim, hist.begin() + (b + 1) * h * dim);
    ext.insert(ext.end(), x.begin() + b * seq * dim, x.begin() + (b + 1) * seq * dim);
  }
  causalConv(ext.data(), k.data(), bias.data(), batch, seq + h, dim, width, yExt.data());
  causalConv(x.data(), k.data(), bias.data(), batch, seq, dim, width, y.data(), hist.data());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < seq * dim; ++i)
      ASSERT_EQ(y[b * seq * dim + i], yExt[(b * (seq + h) + h) * dim + i]) << b << " " << i;
  // and the history matters: without it the first outputs differ
  std::vector<T> y0(x.size());
  causalConv(x.data(), k.data(), bias.data(), batch, seq, dim, width, y0.data());
  EXPECT_NE(y0[0], y[0]);
}
} // namespace
} // namespace ttt::cpu::test
