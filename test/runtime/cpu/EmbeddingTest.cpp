// embedding: exact row copies, and the out-of-range token error.
#include "runtime/backend/cpu/Kernels.h"
#include "test/runtime/cpu/KernelTestUtil.h"

namespace ttt::cpu::test {
namespace {
template <typename T> class EmbeddingTest : public ::testing::Test {};
TYPED_TEST_SUITE(EmbeddingTest, FloatTypes);

TYPED_TEST(EmbeddingTest, CopiesTheSelectedRows) {
  using T = TypeParam;
  const int64_t vocab = 50, dim = 7;
  const auto table = randomVector<T>(vocab * dim, 1);
  auto tokens = randomTokens(23, 2, vocab);
  tokens[0] = 0;
  tokens[1] = vocab - 1;
  tokens[2] = tokens[3]; // a repeated token
  std::vector<T> y(tokens.size() * dim);
  ASSERT_EQ(embedding(tokens.data(), int64_t(tokens.size()), table.data(), vocab, dim, y.data()),
            "");
  for (size_t n = 0; n < tokens.size(); ++n)
    for (int64_t d = 0; d < dim; ++d)
      ASSERT_EQ(y[n * dim + d], table[tokens[n] * dim + d]) << "n=" << n << " d=" << d;
}

TYPED_TEST(EmbeddingTest, OutOfRangeTokenIsAnErrorNamingTokenAndPosition) {
  using T = TypeParam;
  const int64_t vocab = 10, dim = 3;
  const auto table = randomVector<T>(vocab * dim, 3);
  std::vector<T> y(4 * dim, T(7));
  const std::vector<int32_t> tooBig = {1, 2, 3, 10};
  EXPECT_EQ(embedding(tooBig.data(), 4, table.data(), vocab, dim, y.data()),
            "embedding: token 10 at position 3 is outside the vocabulary [0, 10)");
  const std::vector<int32_t> negative = {1, -1, 3, 4};
  EXPECT_EQ(embedding(negative.data(), 4, table.data(), vocab, dim, y.data()),
            "embedding: token -1 at position 1 is outside the vocabulary [0, 10)");
  for (T v : y)
    EXPECT_EQ(v, T(7)) << "nothing is written when a token is bad";
}
} // namespace
} // namespace ttt::cpu::test
