// ttt_init: Philox known answers, determinism, shard independence, distribution checks.
#include "runtime/init/Init.h"
#include "runtime/plan/PlanFile.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace {
using namespace ttt::init;
using ttt::plan::InitKind;

InitSpec spec(const char *name, InitKind kind, double std, int64_t numel) {
  InitSpec s;
  s.name = name;
  s.kind = kind;
  s.std = std;
  s.numel = numel;
  return s;
}

std::vector<double> all(const InitSpec &s, uint64_t seed) {
  std::vector<double> v(size_t(s.numel));
  EXPECT_EQ(initRange(s, seed, 0, s.numel, v.data()), "");
  return v;
}

// Random123's published known-answer vectors (tests/kat_vectors, "philox4x32 10").
TEST(Philox, KnownAnswerZero) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
}
TEST(Philox, KnownAnswerAllOnes) {
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                          {0xffffffffu, 0xffffffffu}),
            (PhiloxCounter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
}
TEST(Philox, KnownAnswerPiDigits) {
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                          {0xa4093822u, 0x299f31d0u}),
            (PhiloxCounter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(InitKey, IsFnvOfNameXorSeed) {
  // FNV-1a 64 of "" is the offset basis; of "a" a published value.
  EXPECT_EQ(ttt::plan::fnv1a64(nullptr, 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(ttt::plan::fnv1a64(reinterpret_cast<const uint8_t *>("a"), 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(parameterKey(0, ""), (PhiloxKey{0x84222325u, 0xcbf29ce4u}));
  EXPECT_EQ(parameterKey(0x0000000100000002ull, ""), (PhiloxKey{0x84222327u, 0xcbf29ce5u}));
}

TEST(InitUniform, OpenAtZeroClosedAtOne) {
  EXPECT_EQ(uniform53(0, 0), 0x1p-53);
  EXPECT_EQ(uniform53(0xffffffffu, 0xffffffffu), 1.0);
  EXPECT_EQ(uniform53(0x80000000u, 0), 0.5 + 0x1p-53);
}

TEST(Init, SameSeedAndNameGiveSameValues) {
  InitSpec s = spec("layers.0.ttt.W1", InitKind::normal, 0.02, 1000);
  EXPECT_EQ(all(s, 7), all(s, 7));
  InitSpec t = spec("layers.0.conv.kernel", InitKind::truncated_normal, 0.5, 1000);
  EXPECT_EQ(all(t, 7), all(t, 7));
}

TEST(Init, DifferentNameOrSeedGiveDifferentValues) {
  InitSpec a = spec("layers.0.ttt.W1", InitKind::normal, 0.02, 256);
  InitSpec b = spec("layers.1.ttt.W1", InitKind::normal, 0.02, 256);
  std::vector<double> va = all(a, 7), vb = all(b, 7), vc = all(a, 8);
  int sameName = 0, sameSeed = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    sameName += va[i] == vb[i];
    sameSeed += va[i] == vc[i];
  }
  EXPECT_EQ(sameName, 0);
  EXPECT_EQ(sameSeed, 0);
}

TEST(Init, ElementIsTheSameAloneOrInTheWholeTensor) {
  for (InitKind kind : {InitKind::normal, InitKind::truncated_normal}) {
    InitSpec s = spec("embed", kind, 0.02, 4096);
    std::vector<double> whole = all(s, 42);
    for (int64_t i : {0, 1, 17, 1000, 4095}) {
      double one = 0;
      ASSERT_EQ(initRange(s, 42, i, 1, &one), "");
      EXPECT_EQ(one, whole[size_t(i)]) << "element " << i;
    }
    // An arbitrary shard, as one rank of a split tensor would draw it.
    std::vector<double> shard(1000);
    ASSERT_EQ(initRange(s, 42, 1234, 1000, shard.data()), "");
    for (size_t i = 0; i < shard.size(); ++i)
      ASSERT_EQ(shard[i], whole[1234 + i]) << "element " << 1234 + i;
  }
}

TEST(Init, FloatIsTheDoubleRoundedToNearest) {
  InitSpec s = spec("w", InitKind::truncated_normal, 0.5, 512);
  std::vector<double> d = all(s, 3);
  std::vector<float> f(512);
  ASSERT_EQ(initRange(s, 3, 0, 512, f.data()), "");
  for (size_t i = 0; i < f.size(); ++i)
    EXPECT_EQ(f[i], float(d[i]));
}

void moments(const std::vector<double> &v, double &mean, double &sd) {
  double s = 0, s2 = 0;
  for (double x : v)
    s += x;
  mean = s / double(v.size());
  for (double x : v)
    s2 += (x - mean) * (x - mean);
  sd = std::sqrt(s2 / double(v.size() - 1));
}

TEST(Init, NormalMeanAndStdWithinStatisticalBounds) {
  const int64_t n = 100000;
  const double std = 0.02;
  std::vector<double> v = all(spec("layers.3.mlp.up", InitKind::normal, std, n), 1);
  double mean, sd;
  moments(v, mean, sd);
  // 5 standard errors: mean se = std/sqrt(n); std se ~ std/sqrt(2n).
  EXPECT_LT(std::fabs(mean), 5 * std / std::sqrt(double(n))) << "mean " << mean;
  EXPECT_LT(std::fabs(sd - std), 5 * std / std::sqrt(2.0 * n)) << "std " << sd;
  // Tails exist: a plain normal exceeds 3 sigma about 0.27% of the time.
  int64_t beyond3 = 0;
  for (double x : v)
    beyond3 += std::fabs(x) > 3 * std;
  EXPECT_GT(beyond3, 150);
  EXPECT_LT(beyond3, 400);
}

TEST(Init, TruncatedNormalStaysWithinTwoSigmaAndHasTheRequestedStd) {
  const int64_t n = 100000;
  const double std = 0.5;
  std::vector<double> v = all(spec("layers.0.conv.kernel", InitKind::truncated_normal, std, n), 1);
  const double bound = 2.0 * std / kTruncatedNormalStd;
  double mean, sd, maxAbs = 0;
  for (double x : v)
    maxAbs = std::max(maxAbs, std::fabs(x));
  EXPECT_LE(maxAbs, bound);
  EXPECT_GT(maxAbs, 0.99 * bound); // the edge is reached, so nothing is clipped early
  moments(v, mean, sd);
  EXPECT_LT(std::fabs(mean), 5 * std / std::sqrt(double(n))) << "mean " << mean;
  // The truncated normal has a lighter tail; its std's standard error is below std/sqrt(2n).
  EXPECT_LT(std::fabs(sd - std), 5 * std / std::sqrt(2.0 * n)) << "std " << sd;
}

TEST(Init, TruncationConstantIsTheStdOfTheTruncatedStandardNormal) {
  // Var(Z | |Z| <= 2) = 1 - 2*2*phi(2) / (2*Phi(2) - 1).
  const double phi2 = std::exp(-2.0) / std::sqrt(2 * M_PI);
  const double mass = std::erf(2.0 / std::sqrt(2.0));
  EXPECT_NEAR(std::sqrt(1 - 4 * phi2 / mass), kTruncatedNormalStd, 1e-15);
}

TEST(Init, ZerosAndOnesAreExact) {
  std::vector<double> z = all(spec("b1", InitKind::zeros, 0.0, 300), 9);
  std::vector<double> o = all(spec("norm", InitKind::ones, 0.0, 300), 9);
  for (size_t i = 0; i < z.size(); ++i) {
    EXPECT_EQ(z[i], 0.0);
    EXPECT_FALSE(std::signbit(z[i]));
    EXPECT_EQ(o[i], 1.0);
  }
  std::vector<float> of(300);
  ASSERT_EQ(initRange(spec("norm", InitKind::ones, 0.0, 300), 9, 0, 300, of.data()), "");
  for (float x : of)
    EXPECT_EQ(x, 1.0f);
}

TEST(Init, RangeOutsideTheTensorIsAnError) {
  InitSpec s = spec("layers.0.ttt.W1", InitKind::normal, 0.02, 10);
  std::vector<double> v(20);
  std::string err = initRange(s, 1, 5, 6, v.data());
  EXPECT_NE(err.find("layers.0.ttt.W1"), std::string::npos) << err;
  EXPECT_NE(err.find("outside"), std::string::npos) << err;
  EXPECT_NE(initRange(s, 1, -1, 1, v.data()), "");
  EXPECT_EQ(initRange(s, 1, 10, 0, v.data()), "");
}

TEST(Init, FromAPlanParameter) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<int64_t> shape = {4, 1, 16};
  auto p = ttt::plan::CreateParameterDirect(b, "layers.0.conv.kernel", &shape,
                                            ttt::plan::DType::f32, InitKind::truncated_normal, 0.5);
  b.Finish(p);
  const auto *param = flatbuffers::GetRoot<ttt::plan::Parameter>(b.GetBufferPointer());
  std::vector<float> viaPlan(64);
  ASSERT_EQ(initParameter(*param, 11, 0, 64, viaPlan.data()), "");
  std::vector<double> viaSpec =
      all(spec("layers.0.conv.kernel", InitKind::truncated_normal, 0.5, 64), 11);
  for (size_t i = 0; i < viaPlan.size(); ++i)
    EXPECT_EQ(viaPlan[i], float(viaSpec[i]));
  EXPECT_NE(initParameter(*param, 11, 0, 65, viaPlan.data()), "");
}

// Pinned values: any change of the algorithm (and so of every trained model's start) shows here.
// test/runtime/init/reference_init.py (plain Python, docs/init.md) computes the same bits.
TEST(Init, PinnedValues) {
  std::vector<double> n = all(spec("model.embed", InitKind::normal, 1.0, 3), 0);
  std::vector<double> t = all(spec("model.embed", InitKind::truncated_normal, 1.0, 3), 0);
  EXPECT_EQ(n, (std::vector<double>{-0x1.dd4e58c1e90a1p-2, -0x1.8bf8abab203cbp-1,
                                    -0x1.0a7253994f17cp+0}));
  EXPECT_EQ(t, (std::vector<double>{-0x1.0f4fe0fcee129p-1, -0x1.c228b15b2b01fp-1,
                                    -0x1.2ee8b89a10df5p+0}));
}
} // namespace
