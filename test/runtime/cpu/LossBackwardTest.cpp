// softmax_xent and masked_mean backward against central differences of the forward kernels,
// masked targets giving zero rows, logits far from zero, float against double.
#include "runtime/backend/cpu/Backward.h"
#include "test/runtime/cpu/GradientTestUtil.h"

#include <stdexcept>

namespace ttt::cpu::test {
namespace {
constexpr int64_t kIgnore = -100;
constexpr int64_t kRows = 9, kVocab = 11;

std::vector<int32_t> targetsWithMaskedRows() {
  auto targets = randomTokens(kRows, 900, kVocab);
  targets[2] = kIgnore;
  targets[6] = kIgnore;
  targets[0] = 0;
  targets[1] = kVocab - 1;
  return targets;
}

TEST(LossBackwardTest, SoftmaxXentMatchesFiniteDifferencesWithMaskedRows) {
  const auto targets = targetsWithMaskedRows();
  for (double offset : {0.0, 30.0}) {
    auto logits = floatExact(kRows * kVocab, 901, offset - 4.0, offset + 4.0);
    const auto dloss = floatExact(kRows, 902, 0.5, 2.0);
    std::vector<double> dlogits(logits.size(), -1.0);
    softmaxXentBackward(logits.data(), targets.data(), dloss.data(), kRows, kVocab, kIgnore,
                        dlogits.data());
    auto loss = [&] {
      std::vector<double> perToken(kRows), mask(kRows);
      EXPECT_EQ(softmaxXent(logits.data(), targets.data(), kRows, kVocab, kIgnore, perToken.data(),
                            mask.data()),
                "");
      return dot(dloss, perToken);
    };
    EXPECT_TRUE(
        closeByNorm(dlogits, centralDifferences(logits, kStep, loss), kFiniteDifferenceTolerance))
        << "offset " << offset;
    for (int64_t row : {2, 6})
      for (int64_t v = 0; v < kVocab; ++v)
        EXPECT_EQ(dlogits[row * kVocab + v], 0.0) << "masked row " << row;
    // Each unmasked row sums to dloss * (1 - 1) = 0.
    for (int64_t row = 0; row < kRows; ++row) {
      Real sum = 0;
      for (int64_t v = 0; v < kVocab; ++v)
        sum += dlogits[row * kVocab + v];
      EXPECT_LT(std::fabs(double(sum)), 1e-14) << "row " << row;
    }
  }
}

TEST(LossBackwardTest, SoftmaxXentIsStableFarFromZero) {
  // softmax is shift invariant: logits +-1000 (exp would overflow unshifted) give the gradient of
  // the unshifted logits.
  const auto targets = targetsWithMaskedRows();
  const auto logits = floatExact(kRows * kVocab, 903, -4.0, 4.0);
  const auto dloss = floatExact(kRows, 904, 0.5, 2.0);
  std::vector<double> want(logits.size());
  softmaxXentBackward(logits.data(), targets.data(), dloss.data(), kRows, kVocab, kIgnore,
                      want.data());
  for (double offset : {1000.0, -1000.0}) {
    auto shifted = logits;
    for (double &v : shifted)
      v += offset; // exact: the sum of a float and 1000 fits a double
    std::vector<double> got(logits.size());
    softmaxXentBackward(shifted.data(), targets.data(), dloss.data(), kRows, kVocab, kIgnore,
                        got.data());
    EXPECT_TRUE(closeByNorm(got, toReal(want), 1e-15)) << "offset " << offset;
  }
}

TEST(LossBackwardTest, FloatMatchesDouble) {
  const auto targets = targetsWithMaskedRows();
  const auto logits = floatExact(kRows * kVocab, 905, -4.0, 4.0);
  const auto dloss = floatExact(kRows, 906, 0.5, 2.0);
  auto mask = floatExact(kRows * 4, 907, 0, 1);
  for (double &m : mask)
    m = m < 0.3 ? 0.0 : 1.0;
  expectFloatMatchesDouble(
      [&](auto tag) {
        using T = decltype(tag);
        const auto logitsT = cast<T>(logits), dlossT = cast<T>(dloss), maskT = cast<T>(mask);
        std::vector<T> dlogits(logits.size()), dmean(mask.size());
        softmaxXentBackward(logitsT.data(), targets.data(), dlossT.data(), kRows, kVocab, kIgnore,
                            dlogits.data());
        maskedMeanBackward(maskT.data(), T(0.71875), kRows, 4, dmean.data());
        return std::vector<std::vector<T>>{dlogits, dmean};
      },
      "loss");
}

TEST(LossBackwardTest, SoftmaxXentBadTargetThrows) {
  const auto logits = floatExact(2 * kVocab, 908);
  const std::vector<double> dloss = {1.0, 1.0};
  const std::vector<int32_t> targets = {0, int32_t(kVocab)};
  std::vector<double> dlogits(logits.size());
  EXPECT_THROW(softmaxXentBackward(logits.data(), targets.data(), dloss.data(), 2, kVocab, kIgnore,
                                   dlogits.data()),
               std::invalid_argument);
}

TEST(LossBackwardTest, MaskedMeanMatchesFiniteDifferencesWithAFullyMaskedRow) {
  const int64_t batch = 4, seq = 7;
  auto loss = floatExact(batch * seq, 910, 0.1, 8.0);
  std::vector<double> mask(batch * seq, 1.0);
  mask[3] = mask[4] = 0.0;          // row 0 partly masked
  for (int64_t t = 0; t < seq; ++t) // row 2 fully masked
    mask[2 * seq + t] = 0.0;
  const double dout = 0.71875;
  std::vector<double> dloss(loss.size(), -1.0);
  maskedMeanBackward(mask.data(), dout, batch, seq, dloss.data());
  auto scalar = [&] {
    std::vector<double> out(1);
    maskedMean(loss.data(), mask.data(), batch, seq, out.data());
    return Real(dout) * Real(out[0]);
  };
  EXPECT_TRUE(
      closeByNorm(dloss, centralDifferences(loss, kStep, scalar), kFiniteDifferenceTolerance));
  for (int64_t t = 0; t < seq; ++t)
    EXPECT_EQ(dloss[2 * seq + t], 0.0);
  EXPECT_EQ(dloss[3], 0.0);
  EXPECT_DOUBLE_EQ(dloss[0], dout / (batch * (seq - 2)));
  EXPECT_DOUBLE_EQ(dloss[seq], dout / (batch * seq));
}
} // namespace
} // namespace ttt::cpu::test
