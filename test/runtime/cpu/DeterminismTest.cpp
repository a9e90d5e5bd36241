// Every kernel, run twice on the same inputs, gives bitwise the same outputs (docs/primitives.md:
// resume and rank-count equivalence are tested exactly). Sizes are large enough for OpenBLAS to
// use its threads.
#include "runtime/backend/cpu/Kernels.h"
#include "test/runtime/cpu/KernelTestUtil.h"

#include <functional>

namespace ttt::cpu::test {
namespace {
template <typename T> class DeterminismTest : public ::testing::Test {};
TYPED_TEST_SUITE(DeterminismTest, FloatTypes);

// Runs `kernel` into two fresh buffers (different initial garbage) and compares them bitwise.
template <typename T>
void expectRepeatable(const char *name, size_t outSize, const std::function<void(T *)> &kernel) {
  std::vector<T> first(outSize, T(1)), second(outSize, T(-7));
  kernel(first.data());
  kernel(second.data());
  EXPECT_TRUE(bitwiseEqual(first, second)) << name << " differs between two runs";
}

TYPED_TEST(DeterminismTest, TwoRunsAreBitwiseIdentical) {
  using T = TypeParam;
  const int64_t batch = 2, seq = 256, dim = 64, heads = 4, vocab = 512;
  const int64_t rows = batch * seq;
  const auto x = randomVector<T>(rows * dim, 200);
  const auto w = randomVector<T>(dim, 201);
  const auto bias = randomVector<T>(dim, 202);
  const auto table = randomVector<T>(vocab * dim, 203);
  const auto tokens = randomTokens(rows, 204, int32_t(vocab));
  const auto logits = randomVector<T>(rows * vocab, 205, -5.0, 5.0);
  const auto big = randomVector<T>(256 * 256 * 2, 206);

  expectRepeatable<T>("embedding", rows * dim, [&](T *y) {
    ASSERT_EQ(embedding(tokens.data(), rows, table.data(), vocab, dim, y), "");
  });
  expectRepeatable<T>("matmul", 2 * 256 * 256, [&](T *y) {
    MatmulShape s;
    s.batch = 2, s.m = 256, s.n = 256, s.k = 256, s.transB = true;
    s.strideA = 0, s.strideB = 256 * 256, s.strideC = 256 * 256;
    matmul<T>(s, T(0.5), big.data(), big.data(), false, y);
  });
  expectRepeatable<T>("rms_norm", rows * dim,
                      [&](T *y) { rmsNorm(x.data(), w.data(), rows, dim, 1e-6, y); });
  expectRepeatable<T>("layer_norm", rows * dim, [&](T *y) {
    layerNorm(x.data(), w.data(), bias.data(), rows, dim, 1e-6, y);
  });
  expectRepeatable<T>("causal_conv", rows * dim, [&](T *y) {
    causalConv(x.data(), table.data(), bias.data(), batch, seq, dim, 4, y);
  });
  expectRepeatable<T>("rope", rows * dim, [&](T *y) {
    rope(x.data(), batch, seq, heads, dim / heads, 16, 10000.0, y);
  });
  expectRepeatable<T>("binary", rows * dim, [&](T *y) {
    binary(BinaryOp::div, x.data(), {batch, seq, dim}, w.data(), {dim}, y);
  });
  expectRepeatable<T>("unary", rows * dim,
                      [&](T *y) { unary(UnaryOp::gelu_tanh, x.data(), rows * dim, 0.0, y); });
  expectRepeatable<T>("reduce", rows,
                      [&](T *y) { reduceLast(ReduceOp::mean, x.data(), rows, dim, y); });
  expectRepeatable<T>("transpose", rows * dim, [&](T *y) {
    transpose(x.data(), {batch, seq, heads, dim / heads}, {0, 2, 1, 3}, y);
  });
  expectRepeatable<T>("slice", batch * 16 * dim, [&](T *y) {
    slice(x.data(), {batch, seq, dim}, 1, 32, 16, y);
  });
  expectRepeatable<T>("tril", 4 * 64 * 64, [&](T *y) { tril(big.data(), 4, 64, y); });
  std::vector<T> mask(rows);
  expectRepeatable<T>("softmax_xent", rows, [&](T *y) {
    ASSERT_EQ(softmaxXent(logits.data(), tokens.data(), rows, vocab, -100, y, mask.data()), "");
  });
  std::vector<T> loss(rows);
  ASSERT_EQ(softmaxXent(logits.data(), tokens.data(), rows, vocab, -100, loss.data(), mask.data()),
            "");
  expectRepeatable<T>("masked_mean", 1,
                      [&](T *y) { maskedMean(loss.data(), mask.data(), batch, seq, y); });
}
} // namespace
} // namespace ttt::cpu::test
