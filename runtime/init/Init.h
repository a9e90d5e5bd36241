// Deterministic parameter initialization (spec 3.2): every element is a pure function of
// (seed, parameter name, element index), so all backends, rank counts and shards agree bit for bit.
// The algorithm is specified in docs/init.md.
#pragma once

#include "runtime/init/Philox.h"
#include "ttt/schema/plan_generated.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace ttt::init {
// std / this = the std of the underlying normal, so that N(0,1) truncated to [-2, 2] and scaled
// has exactly the requested std (flax's LeCun normal). It is the std of N(0,1) given |z| <= 2.
constexpr double kTruncatedNormalStd = 0.87962566103423978;

// Philox key of one parameter: FNV-1a 64 of its name XOR the seed, low word first.
PhiloxKey parameterKey(uint64_t seed, std::string_view name);

// Uniform in (0, 1] from 53 bits of two words: ((hi << 32 | lo) >> 11) + 1) * 2^-53.
double uniform53(uint32_t hi, uint32_t lo);

// The standard normal of element `index` at rejection attempt `attempt` (Box-Muller, cosine
// branch).
double standardNormal(const PhiloxKey &key, uint64_t index, uint32_t attempt);

// What one parameter's initializer needs; `numel` bounds the element range.
struct InitSpec {
  std::string name;
  plan::InitKind kind;
  double std = 0.0;
  int64_t numel = 0;
};
InitSpec specOf(const plan::Parameter &p);

// The value of element `index` (double; float outputs are this value rounded to nearest).
double initValue(plan::InitKind kind, double std, const PhiloxKey &key, uint64_t index);

// Elements [begin, begin + count) of the parameter into out[0..count). Returns "" or a one-line
// error (range outside the tensor, unknown kind, negative std).
std::string initRange(const InitSpec &spec, uint64_t seed, int64_t begin, int64_t count,
                      double *out);
std::string initRange(const InitSpec &spec, uint64_t seed, int64_t begin, int64_t count,
                      float *out);
std::string initParameter(const plan::Parameter &p, uint64_t seed, int64_t begin, int64_t count,
                          double *out);
std::string initParameter(const plan::Parameter &p, uint64_t seed, int64_t begin, int64_t count,
                          float *out);
} // namespace ttt::init
