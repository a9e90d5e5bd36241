// The fused inner loop's hand-derived backward (InnerLoop.h) against central differences of its
// forward, in double, for every input; remat groups give the same results; float follows double.
#include "runtime/backend/cpu/InnerLoop.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace {
using ttt::cpu::InnerLoopShape;
using Vec = std::vector<double>;

struct Case {
  InnerLoopShape s;
  // Inputs in operand order: W0, b0, q, k, v, eta, tau, tau_last, gamma, lambda.
  std::vector<Vec> in;
  // Fixed random weights of the scalar loss sum(w . outputs) over (W_final, b_final, o).
  Vec wW, wb, wo;
};

Vec random(std::mt19937 &rng, size_t n, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  Vec v(n);
  for (double &x : v)
    x = u(rng);
  return v;
}

Case makeCase(int64_t group) {
  Case c;
  c.s = {4, 2, 2, 4, 3, group, 1e-6};
  const int64_t n = 4, B = 2, H = 2, b = 4, f = 3;
  std::mt19937 rng(7);
  c.in = {random(rng, B * H * f * f, -0.5, 0.5), random(rng, B * H * f, -0.5, 0.5),
          random(rng, n * B * H * b * f, -1, 1), random(rng, n * B * H * b * f, -1, 1),
          random(rng, n * B * H * b * f, -1, 1), random(rng, n * B * H * b, 0.05, 0.3),
          random(rng, b, 0.2, 1.0),              random(rng, 1, 0.2, 0.5),
          random(rng, H * f, 0.5, 1.5),          random(rng, H * f, -0.3, 0.3)};
  c.wW = random(rng, B * H * f * f, -1, 1);
  c.wb = random(rng, B * H * f, -1, 1);
  c.wo = random(rng, n * B * H * b * f, -1, 1);
  return c;
}

struct Outputs {
  Vec W, b, o, cW, cb;
};
template <typename T> std::vector<T> cast(const Vec &v) { return std::vector<T>(v.begin(), v.end()); }

template <typename T> Outputs forward(const Case &c, const std::vector<Vec> &in) {
  const InnerLoopShape &s = c.s;
  std::vector<std::vector<T>> x;
  for (const Vec &v : in)
    x.push_back(cast<T>(v));
  const int64_t g = s.n / s.group, bhff = s.batch * s.heads * s.headDim * s.headDim,
                bhf = s.batch * s.heads * s.headDim;
  std::vector<T> W(bhff), b(bhf), o(x[2].size()), cW(g * bhff), cb(g * bhf);
  ttt::cpu::innerLoopForward<T>(s, x[0].data(), x[1].data(), x[2].data(), x[3].data(),
                                x[4].data(), x[5].data(), x[6].data(), x[7].data(), x[8].data(),
                                x[9].data(), W.data(), b.data(), o.data(), cW.data(), cb.data());
  return {Vec(W.begin(), W.end()), Vec(b.begin(), b.end()), Vec(o.begin(), o.end()),
          Vec(cW.begin(), cW.end()), Vec(cb.begin(), cb.end())};
}

double loss(const Case &c, const Outputs &out) {
  double l = 0;
  for (size_t i = 0; i < out.W.size(); ++i)
    l += c.wW[i] * out.W[i];
  for (size_t i = 0; i < out.b.size(); ++i)
    l += c.wb[i] * out.b[i];
  for (size_t i = 0; i < out.o.size(); ++i)
    l += c.wo[i] * out.o[i];
  return l;
}

template <typename T> std::vector<Vec> backward(const Case &c) {
  Outputs f = forward<T>(c, c.in);
  std::vector<std::vector<T>> x;
  for (const Vec &v : c.in)
    x.push_back(cast<T>(v));
  std::vector<std::vector<T>> d;
  for (const Vec &v : c.in)
    d.emplace_back(v.size());
  std::vector<T> cW = cast<T>(f.cW), cb = cast<T>(f.cb), wW = cast<T>(c.wW), wb = cast<T>(c.wb),
                 wo = cast<T>(c.wo);
  ttt::cpu::innerLoopBackward<T>(c.s, cW.data(), cb.data(), x[2].data(), x[3].data(), x[4].data(),
                                 x[5].data(), x[6].data(), x[7].data(), x[8].data(), x[9].data(),
                                 wW.data(), wb.data(), wo.data(), d[0].data(), d[1].data(),
                                 d[2].data(), d[3].data(), d[4].data(), d[5].data(), d[6].data(),
                                 d[7].data(), d[8].data(), d[9].data());
  std::vector<Vec> out;
  for (auto &v : d)
    out.emplace_back(v.begin(), v.end());
  return out;
}

TEST(InnerLoop, BackwardMatchesCentralDifferences) {
  const char *names[] = {"W0", "b0", "q", "k", "v", "eta", "tau", "tau_last", "gamma", "lambda"};
  for (int64_t group : {1, 2, 4}) {
    Case c = makeCase(group);
    std::vector<Vec> grads = backward<double>(c);
    const double h = 1e-6;
    for (size_t a = 0; a < c.in.size(); ++a) {
      double worst = 0, scale = 0;
      for (size_t i = 0; i < c.in[a].size(); ++i) {
        std::vector<Vec> plus = c.in, minus = c.in;
        plus[a][i] += h;
        minus[a][i] -= h;
        double fd = (loss(c, forward<double>(c, plus)) - loss(c, forward<double>(c, minus))) / (2 * h);
        worst = std::max(worst, std::fabs(fd - grads[a][i]));
        scale = std::max(scale, std::fabs(fd));
      }
      EXPECT_LT(worst, 1e-7 * std::max(1.0, scale)) << names[a] << " group " << group;
    }
  }
}

TEST(InnerLoop, GroupsAgreeAndCheckpointsAreTheCarry) {
  Case c1 = makeCase(1), c4 = makeCase(4);
  Outputs f1 = forward<double>(c1, c1.in), f4 = forward<double>(c4, c4.in);
  EXPECT_EQ(f1.W, f4.W);
  EXPECT_EQ(f1.o, f4.o);
  // The first checkpoint is W0; group 1 keeps the state before every step.
  for (size_t i = 0; i < c1.in[0].size(); ++i)
    EXPECT_EQ(f1.cW[i], c1.in[0][i]);
  std::vector<Vec> g1 = backward<double>(c1), g4 = backward<double>(c4);
  for (size_t a = 0; a < g1.size(); ++a)
    for (size_t i = 0; i < g1[a].size(); ++i)
      EXPECT_NEAR(g1[a][i], g4[a][i], 1e-13 * (1 + std::fabs(g4[a][i])));
}

TEST(InnerLoop, FloatFollowsDoubleAndIsDeterministic) {
  Case c = makeCase(2);
  std::vector<Vec> gd = backward<double>(c), gf = backward<float>(c), gf2 = backward<float>(c);
  for (size_t a = 0; a < gd.size(); ++a)
    for (size_t i = 0; i < gd[a].size(); ++i) {
      EXPECT_NEAR(gf[a][i], gd[a][i], 1e-4 * (1 + std::fabs(gd[a][i])));
      EXPECT_EQ(gf[a][i], gf2[a][i]);
    }
}

TEST(InnerLoop, RejectsAGroupThatDoesNotDivide) {
  Case c = makeCase(3);
  EXPECT_THROW(forward<double>(c, c.in), std::invalid_argument);
}
} // namespace

namespace {
// x ([n, B, H, b, f], or [n, B, H, b] with f = 1) in the token-major layout ([B, n, b, H, f]).
Vec toTokenMajor(const InnerLoopShape &s, const Vec &x, int64_t f) {
  InnerLoopShape from = s, to = s;
  from.tokenMajor = false;
  to.tokenMajor = true;
  Vec y(x.size());
  for (int64_t m = 0; m < s.n; ++m)
    for (int64_t bi = 0; bi < s.batch; ++bi)
      for (int64_t hi = 0; hi < s.heads; ++hi)
        for (int64_t t = 0; t < s.miniBatch; ++t)
          for (int64_t e = 0; e < f; ++e)
            y[size_t(f == 1 ? to.etaOffset(m, bi, hi, t) : to.tokenOffset(m, bi, hi, t) + e)] =
                x[size_t(f == 1 ? from.etaOffset(m, bi, hi, t)
                                : from.tokenOffset(m, bi, hi, t) + e)];
  return y;
}
} // namespace

// The token-major layout only moves where q, k, v, eta, o and their cotangents live: the same
// values bit for bit, forward and backward.
TEST(InnerLoop, TokenMajorIsTheSameLoopInTheProjectionsLayout) {
  const Case c = makeCase(2);
  Case t = c;
  t.s.tokenMajor = true;
  const int64_t f = c.s.headDim;
  for (int i : {2, 3, 4})
    t.in[size_t(i)] = toTokenMajor(c.s, c.in[size_t(i)], f);
  t.in[5] = toTokenMajor(c.s, c.in[5], 1);
  t.wo = toTokenMajor(c.s, c.wo, f);

  const Outputs a = forward<double>(c, c.in), b = forward<double>(t, t.in);
  EXPECT_EQ(a.W, b.W);
  EXPECT_EQ(a.b, b.b);
  EXPECT_EQ(a.cW, b.cW);
  EXPECT_EQ(a.cb, b.cb);
  EXPECT_EQ(toTokenMajor(c.s, a.o, f), b.o);

  const std::vector<Vec> da = backward<double>(c), db = backward<double>(t);
  for (int i : {0, 1, 6, 7, 8, 9})
    EXPECT_EQ(da[size_t(i)], db[size_t(i)]) << "cotangent " << i;
  for (int i : {2, 3, 4})
    EXPECT_EQ(toTokenMajor(c.s, da[size_t(i)], f), db[size_t(i)]) << "cotangent " << i;
  EXPECT_EQ(toTokenMajor(c.s, da[5], 1), db[5]);
}
