#include "runtime/init/Init.h"

#include "runtime/plan/PlanFile.h"

#include <cmath>

namespace ttt::init {
namespace {
constexpr double kTwoPi = 6.283185307179586476925286766559;

template <typename T>
std::string fill(const InitSpec &spec, uint64_t seed, int64_t begin, int64_t count, T *out) {
  if (begin < 0 || count < 0 || begin > spec.numel || count > spec.numel - begin)
    return "init of '" + spec.name + "': " + std::to_string(count) + " elements from index " +
           std::to_string(begin) + " are outside its " + std::to_string(spec.numel) + " elements";
  switch (spec.kind) {
  case plan::InitKind::zeros:
  case plan::InitKind::ones: {
    T v = spec.kind == plan::InitKind::ones ? T(1) : T(0);
    for (int64_t i = 0; i < count; ++i)
      out[i] = v;
    return "";
  }
  case plan::InitKind::normal:
  case plan::InitKind::truncated_normal: {
    if (!(spec.std >= 0.0) || !std::isfinite(spec.std))
      return "init of '" + spec.name + "': std " + std::to_string(spec.std) +
             " is not a finite non-negative number";
    PhiloxKey key = parameterKey(seed, spec.name);
    for (int64_t i = 0; i < count; ++i)
      out[i] = T(initValue(spec.kind, spec.std, key, uint64_t(begin + i)));
    return "";
  }
  }
  return "init of '" + spec.name + "': unknown init kind " + std::to_string(int(spec.kind));
}
} // namespace

PhiloxKey parameterKey(uint64_t seed, std::string_view name) {
  uint64_t k = plan::fnv1a64(reinterpret_cast<const uint8_t *>(name.data()), name.size()) ^ seed;
  return {uint32_t(k), uint32_t(k >> 32)};
}

double uniform53(uint32_t hi, uint32_t lo) {
  uint64_t bits = ((uint64_t(hi) << 32) | lo) >> 11;
  return double(bits + 1) * 0x1p-53;
}

double standardNormal(const PhiloxKey &key, uint64_t index, uint32_t attempt) {
  PhiloxCounter r = philox4x32_10({uint32_t(index), attempt, uint32_t(index >> 32), 0u}, key);
  double u1 = uniform53(r[0], r[1]);
  double u2 = uniform53(r[2], r[3]);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

double initValue(plan::InitKind kind, double std, const PhiloxKey &key, uint64_t index) {
  switch (kind) {
  case plan::InitKind::zeros:
    return 0.0;
  case plan::InitKind::ones:
    return 1.0;
  case plan::InitKind::normal:
    return standardNormal(key, index, 0) * std;
  case plan::InitKind::truncated_normal:
    // About 4.6% of draws are redrawn; the attempt number keeps every redraw independent.
    for (uint32_t attempt = 0;; ++attempt) {
      double z = standardNormal(key, index, attempt);
      if (std::fabs(z) <= 2.0)
        return z * (std / kTruncatedNormalStd);
    }
  }
  return std::nan("");
}

InitSpec specOf(const plan::Parameter &p) {
  InitSpec s;
  s.name = p.name() ? p.name()->str() : std::string();
  s.kind = p.init();
  s.std = p.init_std();
  s.numel = 1;
  if (p.shape())
    for (int64_t d : *p.shape())
      s.numel *= d;
  return s;
}

std::string initRange(const InitSpec &spec, uint64_t seed, int64_t begin, int64_t count,
                      double *out) {
  return fill(spec, seed, begin, count, out);
}
std::string initRange(const InitSpec &spec, uint64_t seed, int64_t begin, int64_t count,
                      float *out) {
  return fill(spec, seed, begin, count, out);
}
std::string initParameter(const plan::Parameter &p, uint64_t seed, int64_t begin, int64_t count,
                          double *out) {
  return fill(specOf(p), seed, begin, count, out);
}
std::string initParameter(const plan::Parameter &p, uint64_t seed, int64_t begin, int64_t count,
                          float *out) {
  return fill(specOf(p), seed, begin, count, out);
}
} // namespace ttt::init
