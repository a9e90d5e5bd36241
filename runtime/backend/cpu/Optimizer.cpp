// optimizer: the global gradient norm's sum of squares, one AdamW step (optax's scale_by_adam,
// add_decayed_weights, scale_by_learning_rate) and optax's warmup_cosine_decay_schedule (spec
// 4.1-4.2). Every update is computed in double and rounded once to T.
#include "runtime/backend/cpu/Backward.h"

#include <algorithm>
#include <cmath>

namespace ttt::cpu {
namespace {
constexpr double kPi = 3.14159265358979323846;
} // namespace

template <typename T> double sumSquares(const T *x, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i)
    sum += double(x[i]) * double(x[i]);
  return sum;
}

template <typename T>
void adamwStep(T *param, const T *grad, T *m, T *v, int64_t n, double lr, double beta1,
               double beta2, double eps, double weightDecay, bool decay, int64_t step,
               double clipScale) {
  // Bias corrections use the 1-based count of this update (optax increments before correcting).
  const double correction1 = 1.0 - std::pow(beta1, double(step));
  const double correction2 = 1.0 - std::pow(beta2, double(step));
  const double wd = decay ? weightDecay : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double g = double(grad[i]) * clipScale;
    const double mi = beta1 * double(m[i]) + (1.0 - beta1) * g;
    const double vi = beta2 * double(v[i]) + (1.0 - beta2) * g * g;
    m[i] = T(mi);
    v[i] = T(vi);
    // The step is taken from the stored (rounded) moments, so it is a function of the state.
    const double mhat = double(m[i]) / correction1, vhat = double(v[i]) / correction2;
    const double p = double(param[i]);
    param[i] = T(p - lr * (mhat / (std::sqrt(vhat) + eps) + wd * p));
  }
}

double warmupCosineLr(int64_t count, double peak, double end, int64_t warmup, int64_t total) {
  const int64_t c = std::max<int64_t>(count, 0);
  if (c < warmup)
    return peak * double(c) / double(warmup); // linear from 0; warmup > 0 here
  const int64_t decaySteps = total - warmup;
  // No decay interval (total <= warmup): the decay is already over. optax rejects this
  // configuration; the limit of the schedule for c >= total is `end`.
  if (decaySteps <= 0)
    return end;
  const double progress = double(std::min(c - warmup, decaySteps)) / double(decaySteps);
  return end + (peak - end) * 0.5 * (1.0 + std::cos(kPi * progress));
}

template double sumSquares<float>(const float *, int64_t);
template double sumSquares<double>(const double *, int64_t);
template void adamwStep<float>(float *, const float *, float *, float *, int64_t, double, double,
                               double, double, double, bool, int64_t, double);
template void adamwStep<double>(double *, const double *, double *, double *, int64_t, double,
                                double, double, double, double, bool, int64_t, double);
} // namespace ttt::cpu
