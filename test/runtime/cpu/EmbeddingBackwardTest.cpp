// embedding backward: repeated tokens summed, unused rows zero, central differences of the
// forward, float against double, bad tokens.
#include "runtime/backend/cpu/Backward.h"
#include "test/runtime/cpu/GradientTestUtil.h"

namespace ttt::cpu::test {
namespace {
const std::vector<int32_t> kTokens = {3, 1, 3, 0, 6, 3, 1, 4, 4, 3, 0, 6}; // 2, 5 unused
constexpr int64_t kVocab = 7, kDim = 5;

TEST(EmbeddingBackwardTest, MatchesFiniteDifferencesWithRepeatedTokens) {
  const int64_t n = int64_t(kTokens.size());
  auto table = floatExact(kVocab * kDim, 600);
  const auto dy = floatExact(n * kDim, 601);
  std::vector<double> dtable(table.size(), -7.0);
  ASSERT_EQ(embeddingBackward(kTokens.data(), n, dy.data(), kVocab, kDim, dtable.data()), "");
  auto loss = [&] {
    std::vector<double> y(n * kDim);
    EXPECT_EQ(embedding(kTokens.data(), n, table.data(), kVocab, kDim, y.data()), "");
    return dot(dy, y);
  };
  EXPECT_TRUE(
      closeByNorm(dtable, centralDifferences(table, kStep, loss), kFiniteDifferenceTolerance));
  for (int32_t unused : {2, 5})
    for (int64_t c = 0; c < kDim; ++c)
      EXPECT_EQ(dtable[unused * kDim + c], 0.0) << "row " << unused << " is zeroed first";
  // Token 3 appears at positions 0, 2, 5, 9.
  for (int64_t c = 0; c < kDim; ++c)
    EXPECT_EQ(dtable[3 * kDim + c],
              ((dy[0 * kDim + c] + dy[2 * kDim + c]) + dy[5 * kDim + c]) + dy[9 * kDim + c]);
}

TEST(EmbeddingBackwardTest, FloatMatchesDouble) {
  const auto dy = floatExact(kTokens.size() * kDim, 602);
  expectFloatMatchesDouble(
      [&](auto tag) {
        using T = decltype(tag);
        const auto dyT = cast<T>(dy);
        std::vector<T> dtable(kVocab * kDim);
        EXPECT_EQ(embeddingBackward(kTokens.data(), int64_t(kTokens.size()), dyT.data(), kVocab,
                                    kDim, dtable.data()),
                  "");
        return std::vector<std::vector<T>>{dtable};
      },
      "embedding");
}

TEST(EmbeddingBackwardTest, BadTokenIsAnErrorAndWritesNothing) {
  const std::vector<int32_t> tokens = {1, 7, 0};
  const auto dy = floatExact(3 * kDim, 603);
  std::vector<double> dtable(kVocab * kDim, 9.0);
  EXPECT_EQ(embeddingBackward(tokens.data(), 3, dy.data(), kVocab, kDim, dtable.data()),
            "embedding_backward: token 7 at position 1 is outside the vocabulary [0, 7)");
  EXPECT_EQ(dtable, std::vector<double>(kVocab * kDim, 9.0));
  const std::vector<int32_t> negative = {-1};
  EXPECT_NE(embeddingBackward(negative.data(), 1, dy.data(), kVocab, kDim, dtable.data()), "");
}
} // namespace
} // namespace ttt::cpu::test
