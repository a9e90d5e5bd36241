// softmax_xent (stable, masked targets, bad target error) and masked_mean (the 1e-10 floor).
#include "runtime/backend/cpu/Kernels.h"
#include "test/runtime/cpu/KernelTestUtil.h"

namespace ttt::cpu::test {
namespace {
template <typename T> class LossTest : public ::testing::Test {};
TYPED_TEST_SUITE(LossTest, FloatTypes);

constexpr int64_t kIgnore = -100;

template <typename T>
std::vector<Real> xentReference(const std::vector<T> &logits, const std::vector<int32_t> &targets,
                                int64_t vocab) {
  std::vector<Real> loss(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i] == kIgnore)
      continue;
    // Straight from the definition in long double (its exponent range takes logits of 1000).
    Real sum = 0;
    for (int64_t v = 0; v < vocab; ++v)
      sum += std::exp(Real(logits[i * vocab + v]));
    loss[i] = std::log(sum) - Real(logits[i * vocab + targets[i]]);
  }
  return loss;
}

TYPED_TEST(LossTest, SoftmaxXentAgainstReferenceWithMaskedTargets) {
  using T = TypeParam;
  for (double offset : {0.0, 1000.0, -1000.0}) {
    const int64_t n = 12, vocab = 37;
    // Logits far from zero would overflow exp() without the max subtracted.
    const auto logits = randomVector<T>(n * vocab, 180, offset - 4.0, offset + 4.0);
    auto targets = randomTokens(n, 181, vocab);
    targets[2] = kIgnore;
    targets[7] = kIgnore;
    targets[0] = 0;
    targets[1] = vocab - 1;
    std::vector<T> loss(n, T(-1)), mask(n, T(-1));
    ASSERT_EQ(
        softmaxXent(logits.data(), targets.data(), n, vocab, kIgnore, loss.data(), mask.data()),
        "");
    EXPECT_TRUE(closeByNorm(loss, xentReference(logits, targets, vocab), tolerance<T>()))
        << "offset " << offset;
    for (int64_t i = 0; i < n; ++i) {
      const bool masked = targets[i] == kIgnore;
      EXPECT_EQ(mask[i], masked ? T(0) : T(1)) << i;
      if (masked)
        EXPECT_EQ(loss[i], T(0)) << i;
      else
        EXPECT_GT(loss[i], T(0)) << i;
    }
  }
}

TYPED_TEST(LossTest, SoftmaxXentBadTargetIsAnErrorNamingTargetAndPosition) {
  using T = TypeParam;
  const int64_t vocab = 5;
  const auto logits = randomVector<T>(3 * vocab, 182);
  std::vector<T> loss(3, T(9)), mask(3, T(9));
  const std::vector<int32_t> tooBig = {1, 5, 0};
  EXPECT_EQ(softmaxXent(logits.data(), tooBig.data(), 3, vocab, kIgnore, loss.data(), mask.data()),
            "softmax_xent: target 5 at position 1 is outside the vocabulary [0, 5)");
  const std::vector<int32_t> negative = {1, 2, -3};
  EXPECT_EQ(
      softmaxXent(logits.data(), negative.data(), 3, vocab, kIgnore, loss.data(), mask.data()),
      "softmax_xent: target -3 at position 2 is outside the vocabulary [0, 5)");
  EXPECT_EQ(loss, std::vector<T>(3, T(9))) << "nothing is written when a target is bad";
}

template <typename T>
Real maskedMeanReference(const std::vector<T> &loss, const std::vector<T> &mask, int64_t batch,
                         int64_t seq) {
  Real total = 0;
  for (int64_t b = 0; b < batch; ++b) {
    Real num = 0, den = 0;
    for (int64_t t = 0; t < seq; ++t) {
      num += Real(loss[b * seq + t]) * Real(mask[b * seq + t]);
      den += mask[b * seq + t];
    }
    total += num / (den > Real(1e-10) ? den : Real(1e-10));
  }
  return total / batch;
}

TYPED_TEST(LossTest, MaskedMeanWithAFullyMaskedRow) {
  using T = TypeParam;
  const int64_t batch = 4, seq = 9;
  const auto loss = randomVector<T>(batch * seq, 190, 0.1, 8.0);
  std::vector<T> mask(batch * seq, T(1));
  mask[3] = mask[4] = T(0);         // row 0 partly masked
  for (int64_t t = 0; t < seq; ++t) // row 2 fully masked: contributes 0, still counts in the mean
    mask[2 * seq + t] = T(0);
  std::vector<T> out(1);
  maskedMean(loss.data(), mask.data(), batch, seq, out.data());
  EXPECT_TRUE(closeByNorm(out, {maskedMeanReference(loss, mask, batch, seq)}, tolerance<T>()));
  EXPECT_FALSE(std::isnan(out[0]));

  std::vector<T> none(seq, T(0)), allMasked(1);
  maskedMean(loss.data(), none.data(), 1, seq, allMasked.data());
  EXPECT_EQ(allMasked[0], T(0));
}
} // namespace
} // namespace ttt::cpu::test
