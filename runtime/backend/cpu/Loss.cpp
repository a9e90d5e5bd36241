// loss: per-token softmax cross-entropy (log-sum-exp with the max subtracted, in double) and the
// per-sequence masked mean of spec 4.5.
#include "runtime/backend/cpu/Kernels.h"

#include <algorithm>
#include <cmath>

namespace ttt::cpu {
template <typename T>
std::string softmaxXent(const T *logits, const int32_t *targets, int64_t n, int64_t vocab,
                        int64_t ignoreToken, T *loss, T *mask) {
  // Check every target before writing anything: a bad one would read outside its row.
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] != ignoreToken && (targets[i] < 0 || targets[i] >= vocab))
      return "softmax_xent: target " + std::to_string(targets[i]) + " at position " +
             std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
  }
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] == ignoreToken) {
      loss[i] = T(0);
      mask[i] = T(0);
      continue;
    }
    const T *row = logits + i * vocab;
    // exp in T (the bulk of the work), the sum and the log in double.
    const T rowMax = *std::max_element(row, row + vocab);
    double sumExp = 0.0;
    for (int64_t v = 0; v < vocab; ++v)
      sumExp += double(std::exp(row[v] - rowMax));
    const double logSumExp = double(rowMax) + std::log(sumExp);
    loss[i] = T(logSumExp - double(row[targets[i]]));
    mask[i] = T(1);
  }
  return "";
}

template <typename T>
void maskedMean(const T *loss, const T *mask, int64_t batch, int64_t seq, T *out) {
  double total = 0.0;
  for (int64_t b = 0; b < batch; ++b) {
    double weighted = 0.0, count = 0.0;
    for (int64_t t = 0; t < seq; ++t) {
      weighted += double(loss[b * seq + t]) * double(mask[b * seq + t]);
      count += double(mask[b * seq + t]);
    }
    // A fully masked sequence contributes 0 / 1e-10 = 0 rather than 0 / 0.
    total += weighted / std::max(count, 1e-10);
  }
  out[0] = T(total / double(batch));
}

template std::string softmaxXent<float>(const float *, const int32_t *, int64_t, int64_t, int64_t,
                                        float *, float *);
template std::string softmaxXent<double>(const double *, const int32_t *, int64_t, int64_t, int64_t,
                                         double *, double *);
template void maskedMean<float>(const float *, const float *, int64_t, int64_t, float *);
template void maskedMean<double>(const double *, const double *, int64_t, int64_t, double *);
} // namespace ttt::cpu
