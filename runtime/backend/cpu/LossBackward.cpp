// loss backward: softmax cross-entropy (softmax with the max subtracted, in double) and the
// per-sequence masked mean of spec 4.5.
#include "runtime/backend/cpu/Backward.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ttt::cpu {
template <typename T>
void softmaxXentBackward(const T *logits, const int32_t *targets, const T *dloss, int64_t n,
                         int64_t vocab, int64_t ignoreToken, T *dlogits) {
  // The forward has already reported bad targets as data errors; here one would write outside
  // its row, so it is a caller bug.
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] != ignoreToken && (targets[i] < 0 || targets[i] >= vocab))
      throw std::invalid_argument("softmax_xent_backward: target " + std::to_string(targets[i]) +
                                  " at position " + std::to_string(i) +
                                  " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
  for (int64_t i = 0; i < n; ++i) {
    const T *row = logits + i * vocab;
    T *out = dlogits + i * vocab;
    if (targets[i] == ignoreToken) {
      std::fill(out, out + vocab, T(0)); // mask 0: no gradient
      continue;
    }
    // The exponentials in T (one exp per logit, the bulk of the work at vocab 32000), stored
    // in the output; their sum and the scaling in double.
    const T rowMax = *std::max_element(row, row + vocab);
    double sumExp = 0.0;
    for (int64_t v = 0; v < vocab; ++v) {
      out[v] = std::exp(row[v] - rowMax);
      sumExp += double(out[v]);
    }
    const double scale = double(dloss[i]) / sumExp;
    for (int64_t v = 0; v < vocab; ++v)
      out[v] = T(scale * double(out[v]));
    out[targets[i]] = T(double(out[targets[i]]) - double(dloss[i]));
  }
}

template <typename T>
void maskedMeanBackward(const T *mask, T dout, int64_t batch, int64_t seq, T *dloss) {
  for (int64_t b = 0; b < batch; ++b) {
    double count = 0.0;
    for (int64_t t = 0; t < seq; ++t)
      count += double(mask[b * seq + t]);
    // The same 1e-10 floor as the forward: a fully masked sequence gets a zero gradient.
    const double scale = double(dout) / (double(batch) * std::max(count, 1e-10));
    for (int64_t t = 0; t < seq; ++t)
      dloss[b * seq + t] = T(scale * double(mask[b * seq + t]));
  }
}

template void softmaxXentBackward<float>(const float *, const int32_t *, const float *, int64_t,
                                         int64_t, int64_t, float *);
template void softmaxXentBackward<double>(const double *, const int32_t *, const double *, int64_t,
                                          int64_t, int64_t, double *);
template void maskedMeanBackward<float>(const float *, float, int64_t, int64_t, float *);
template void maskedMeanBackward<double>(const double *, double, int64_t, int64_t, double *);
} // namespace ttt::cpu
