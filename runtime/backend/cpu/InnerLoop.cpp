// The fused inner loop (InnerLoop.h): direct loops, independent of the primitive kernels.
#include "runtime/backend/cpu/InnerLoop.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttt::cpu {
namespace {
using Vec = std::vector<double>;

// What one (batch, head) shares over its mini-batches.
struct Head {
  int64_t b = 0, f = 0;
  double eps = 0, tauLast = 0;
  const double *tau = nullptr, *gamma = nullptr, *lambda = nullptr; // [b], [f], [f]
};

// One mini-batch of one (batch, head), rows = tokens.
struct StepIn {
  Vec Q, K, V, eta; // [b, f] x 3, [b]
};

// The forward quantities the backward of a step reads.
struct Cache {
  Vec zhat, rstd, r, G; // closed-form gradient: zhat [b, f], 1/sigma [b], LN(z) - (v - k), G
  Vec A;                // [b, b]: q_i . k_j for j <= i
  Vec xhat, rstdL;      // LayerNorm of Zbar: normalized rows [b, f], 1/sigma [b]
};

// Dual-form step (spec 2.6) from state (W, bias): fills the cache, the output rows (if `out`)
// and the next state.
void stepForward(const Head &h, const double *W, const double *bias, const StepIn &x, Cache &c,
                 double *out, double *Wn, double *bn) {
  const int64_t b = h.b, f = h.f;
  c.zhat.assign(b * f, 0.0);
  c.r.assign(b * f, 0.0);
  c.G.assign(b * f, 0.0);
  c.rstd.assign(b, 0.0);
  c.A.assign(b * b, 0.0);
  c.xhat.assign(b * f, 0.0);
  c.rstdL.assign(b, 0.0);
  Vec z(f);
  // G_j = grad_z 1/2 |LN(z_j) - (v_j - k_j)|^2 at z_j = k_j W + bias (spec 2.4).
  for (int64_t j = 0; j < b; ++j) {
    const double *kj = &x.K[j * f], *vj = &x.V[j * f];
    for (int64_t e = 0; e < f; ++e)
      z[e] = bias[e];
    for (int64_t a = 0; a < f; ++a)
      for (int64_t e = 0; e < f; ++e)
        z[e] += kj[a] * W[a * f + e];
    double mean = 0, var = 0;
    for (int64_t e = 0; e < f; ++e)
      mean += z[e];
    mean /= double(f);
    for (int64_t e = 0; e < f; ++e)
      var += (z[e] - mean) * (z[e] - mean);
    var /= double(f);
    const double rstd = 1.0 / std::sqrt(var + h.eps);
    c.rstd[j] = rstd;
    double s1 = 0, s2 = 0;
    for (int64_t e = 0; e < f; ++e) {
      const double zh = (z[e] - mean) * rstd;
      const double r = h.gamma[e] * zh + h.lambda[e] - (vj[e] - kj[e]);
      const double g = r * h.gamma[e];
      c.zhat[j * f + e] = zh;
      c.r[j * f + e] = r;
      s1 += g;
      s2 += g * zh;
    }
    for (int64_t e = 0; e < f; ++e) {
      const double g = c.r[j * f + e] * h.gamma[e];
      c.G[j * f + e] = (g - s1 / double(f) - c.zhat[j * f + e] * s2 / double(f)) * rstd;
    }
  }
  // A_ij = q_i . k_j (j <= i); Zbar_i = q_i W + bias - sum_{j<=i} tau_i eta_j (1 + A_ij) G_j.
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double a = 0;
      for (int64_t e = 0; e < f; ++e)
        a += x.Q[i * f + e] * x.K[j * f + e];
      c.A[i * b + j] = a;
    }
  Vec zbar(f);
  for (int64_t i = 0; i < b; ++i) {
    const double *qi = &x.Q[i * f];
    for (int64_t e = 0; e < f; ++e)
      zbar[e] = bias[e];
    for (int64_t a = 0; a < f; ++a)
      for (int64_t e = 0; e < f; ++e)
        zbar[e] += qi[a] * W[a * f + e];
    for (int64_t j = 0; j <= i; ++j) {
      const double coeff = h.tau[i] * x.eta[j] * (c.A[i * b + j] + 1.0);
      for (int64_t e = 0; e < f; ++e)
        zbar[e] -= coeff * c.G[j * f + e];
    }
    double mean = 0, var = 0;
    for (int64_t e = 0; e < f; ++e)
      mean += zbar[e];
    mean /= double(f);
    for (int64_t e = 0; e < f; ++e)
      var += (zbar[e] - mean) * (zbar[e] - mean);
    var /= double(f);
    const double rstd = 1.0 / std::sqrt(var + h.eps);
    c.rstdL[i] = rstd;
    for (int64_t e = 0; e < f; ++e) {
      const double xh = (zbar[e] - mean) * rstd;
      c.xhat[i * f + e] = xh;
      if (out)
        out[i * f + e] = qi[e] + h.gamma[e] * xh + h.lambda[e];
    }
  }
  // W' = W - sum_j tau_b eta_j k_j^T G_j,  b' = b - sum_j tau_b eta_j G_j.
  for (int64_t i = 0; i < f * f; ++i)
    Wn[i] = W[i];
  for (int64_t e = 0; e < f; ++e)
    bn[e] = bias[e];
  for (int64_t j = 0; j < b; ++j) {
    const double el = h.tauLast * x.eta[j];
    for (int64_t a = 0; a < f; ++a) {
      const double ka = el * x.K[j * f + a];
      for (int64_t e = 0; e < f; ++e)
        Wn[a * f + e] -= ka * c.G[j * f + e];
    }
    for (int64_t e = 0; e < f; ++e)
      bn[e] -= el * c.G[j * f + e];
  }
}

// Per-(batch, head) cotangents of one step's inputs.
struct StepGrad {
  Vec dQ, dK, dV, deta;
};
// Accumulated over all (batch, head, step): tau, tau_last; gamma, lambda of this head.
struct SharedGrad {
  double *dtau, *dtauLast, *dgamma, *dlambda;
};

// The hand-derived reverse of stepForward: from the cotangents of (W', b', out) to those of
// (W, b) (written to dW, db) and of the step's inputs.
void stepBackward(const Head &h, const double *W, const StepIn &x, const Cache &c,
                  const double *dWn, const double *dbn, const double *dOut, double *dW,
                  double *db, StepGrad &g, SharedGrad &s) {
  const int64_t b = h.b, f = h.f;
  const double invF = 1.0 / double(f);
  g.dQ.assign(b * f, 0.0);
  g.dK.assign(b * f, 0.0);
  g.dV.assign(b * f, 0.0);
  g.deta.assign(b, 0.0);
  for (int64_t i = 0; i < f * f; ++i)
    dW[i] = dWn[i];
  for (int64_t e = 0; e < f; ++e)
    db[e] = dbn[e];
  Vec dG(b * f, 0.0), dln(f), dzbar(f);

  // out_i = q_i + gamma * xhat_i + lambda; xhat_i = LN(Zbar_i).
  for (int64_t i = 0; i < b; ++i) {
    const double *dyi = &dOut[i * f], *xh = &c.xhat[i * f], *qi = &x.Q[i * f];
    double m1 = 0, m2 = 0;
    for (int64_t e = 0; e < f; ++e) {
      g.dQ[i * f + e] += dyi[e];
      s.dgamma[e] += dyi[e] * xh[e];
      s.dlambda[e] += dyi[e];
      dln[e] = dyi[e] * h.gamma[e];
      m1 += dln[e];
      m2 += dln[e] * xh[e];
    }
    m1 *= invF;
    m2 *= invF;
    for (int64_t e = 0; e < f; ++e)
      dzbar[e] = c.rstdL[i] * (dln[e] - m1 - xh[e] * m2);
    // Zbar_i = q_i W + bias - sum_{j<=i} C_ij G_j, C_ij = tau_i eta_j (1 + A_ij).
    for (int64_t a = 0; a < f; ++a) {
      double acc = 0;
      for (int64_t e = 0; e < f; ++e) {
        acc += dzbar[e] * W[a * f + e];
        dW[a * f + e] += qi[a] * dzbar[e];
      }
      g.dQ[i * f + a] += acc;
    }
    for (int64_t e = 0; e < f; ++e)
      db[e] += dzbar[e];
    for (int64_t j = 0; j <= i; ++j) {
      const double E = h.tau[i] * x.eta[j], A = c.A[i * b + j];
      const double C = E * (A + 1.0);
      double dC = 0;
      for (int64_t e = 0; e < f; ++e) {
        dC -= dzbar[e] * c.G[j * f + e];
        dG[j * f + e] -= C * dzbar[e];
      }
      const double dE = dC * (A + 1.0), dA = dC * E;
      s.dtau[i] += dE * x.eta[j];
      g.deta[j] += dE * h.tau[i];
      for (int64_t e = 0; e < f; ++e) {
        g.dQ[i * f + e] += dA * x.K[j * f + e];
        g.dK[j * f + e] += dA * qi[e];
      }
    }
  }

  // W' = W - sum_j el_j k_j^T G_j, b' = b - sum_j el_j G_j with el_j = tau_last eta_j.
  Vec dP(f);
  for (int64_t j = 0; j < b; ++j) {
    const double el = h.tauLast * x.eta[j];
    const double *kj = &x.K[j * f], *Gj = &c.G[j * f];
    for (int64_t e = 0; e < f; ++e) {
      double acc = 0;
      for (int64_t a = 0; a < f; ++a)
        acc += kj[a] * dWn[a * f + e];
      dP[e] = -acc - dbn[e]; // d(el_j G_j)
    }
    for (int64_t a = 0; a < f; ++a) {
      double acc = 0;
      for (int64_t e = 0; e < f; ++e)
        acc += dWn[a * f + e] * Gj[e];
      g.dK[j * f + a] -= el * acc;
    }
    double dEl = 0;
    for (int64_t e = 0; e < f; ++e) {
      dEl += dP[e] * Gj[e];
      dG[j * f + e] += el * dP[e];
    }
    g.deta[j] += dEl * h.tauLast;
    *s.dtauLast += dEl * x.eta[j];
  }

  // G_j = rstd (g - s1/f - zhat s2/f), g = r gamma, r = gamma zhat + lambda - (v - k),
  // zhat = (z - mean) rstd, z = k W + bias.
  Vec gg(f), dg(f), dzh(f), dz(f);
  for (int64_t j = 0; j < b; ++j) {
    const double rstd = c.rstd[j];
    const double *zh = &c.zhat[j * f], *r = &c.r[j * f], *dGj = &dG[j * f];
    double s1 = 0, s2 = 0;
    for (int64_t e = 0; e < f; ++e) {
      gg[e] = r[e] * h.gamma[e];
      s1 += gg[e];
      s2 += gg[e] * zh[e];
    }
    double drstd = 0, sdu = 0, sduz = 0;
    for (int64_t e = 0; e < f; ++e) {
      const double u = gg[e] - s1 * invF - zh[e] * s2 * invF;
      drstd += dGj[e] * u;
      const double du = rstd * dGj[e];
      sdu += du;
      sduz += du * zh[e];
    }
    for (int64_t e = 0; e < f; ++e) {
      const double du = rstd * dGj[e];
      dg[e] = du - sdu * invF - zh[e] * sduz * invF;
      dzh[e] = -du * s2 * invF - sduz * invF * gg[e];
    }
    for (int64_t e = 0; e < f; ++e) {
      const double dr = dg[e] * h.gamma[e];
      s.dgamma[e] += dg[e] * r[e] + dr * zh[e];
      s.dlambda[e] += dr;
      dzh[e] += dr * h.gamma[e];
      g.dV[j * f + e] -= dr;
      g.dK[j * f + e] += dr;
    }
    // zhat = zc rstd, rstd = (mean(zc^2) + eps)^-1/2, zc = z - mean(z).
    for (int64_t e = 0; e < f; ++e)
      drstd += dzh[e] * zh[e] / rstd;
    const double dvar = -0.5 * drstd * rstd * rstd * rstd;
    double mdzc = 0;
    for (int64_t e = 0; e < f; ++e) {
      dz[e] = dzh[e] * rstd + dvar * 2.0 * (zh[e] / rstd) * invF;
      mdzc += dz[e];
    }
    mdzc *= invF;
    for (int64_t e = 0; e < f; ++e)
      dz[e] -= mdzc;
    const double *kj = &x.K[j * f];
    for (int64_t a = 0; a < f; ++a) {
      double acc = 0;
      for (int64_t e = 0; e < f; ++e) {
        acc += dz[e] * W[a * f + e];
        dW[a * f + e] += kj[a] * dz[e];
      }
      g.dK[j * f + a] += acc;
    }
    for (int64_t e = 0; e < f; ++e)
      db[e] += dz[e];
  }
}

template <typename T> void toDouble(const T *src, int64_t n, double *dst) {
  for (int64_t i = 0; i < n; ++i)
    dst[i] = double(src[i]);
}
// The carried state as the plan's type stores it.
template <typename T> void roundTo(double *x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    x[i] = double(T(x[i]));
}

void check(const InnerLoopShape &s) {
  if (s.n <= 0 || s.batch <= 0 || s.heads <= 0 || s.miniBatch <= 0 || s.headDim <= 0 ||
      s.group <= 0 || s.n % s.group != 0)
    throw std::invalid_argument("inner_loop: bad shape (n " + std::to_string(s.n) + ", group " +
                                std::to_string(s.group) + ")");
}

// Reads the inputs of mini-batch m of (batch, head) = (bi, hi).
template <typename T>
void loadStep(const InnerLoopShape &s, int64_t m, int64_t bi, int64_t hi, const T *q, const T *k,
              const T *v, const T *eta, StepIn &x) {
  const int64_t b = s.miniBatch, f = s.headDim;
  x.Q.resize(b * f);
  x.K.resize(b * f);
  x.V.resize(b * f);
  x.eta.resize(b);
  for (int64_t t = 0; t < b; ++t) {
    const int64_t at = s.tokenOffset(m, bi, hi, t);
    toDouble(q + at, f, x.Q.data() + t * f);
    toDouble(k + at, f, x.K.data() + t * f);
    toDouble(v + at, f, x.V.data() + t * f);
    x.eta[t] = double(eta[s.etaOffset(m, bi, hi, t)]);
  }
}

struct Consts {
  Vec tau, gamma, lambda; // [b], [H, f], [H, f]
  double tauLast = 0;
};
template <typename T>
Consts loadConsts(const InnerLoopShape &s, const T *tau, const T *tauLast, const T *gamma,
                  const T *lambda) {
  Consts c;
  c.tau.resize(s.miniBatch);
  c.gamma.resize(s.heads * s.headDim);
  c.lambda.resize(s.heads * s.headDim);
  toDouble(tau, s.miniBatch, c.tau.data());
  toDouble(gamma, s.heads * s.headDim, c.gamma.data());
  toDouble(lambda, s.heads * s.headDim, c.lambda.data());
  c.tauLast = double(*tauLast);
  return c;
}
Head headOf(const InnerLoopShape &s, const Consts &c, int64_t hi) {
  Head h;
  h.b = s.miniBatch;
  h.f = s.headDim;
  h.eps = s.eps;
  h.tauLast = c.tauLast;
  h.tau = c.tau.data();
  h.gamma = c.gamma.data() + hi * s.headDim;
  h.lambda = c.lambda.data() + hi * s.headDim;
  return h;
}
} // namespace

template <typename T>
void innerLoopForward(const InnerLoopShape &s, const T *W0, const T *b0, const T *q, const T *k,
                      const T *v, const T *eta, const T *tau, const T *tauLast, const T *gamma,
                      const T *lambda, T *Wfinal, T *bfinal, T *o, T *ckptW, T *ckptB) {
  check(s);
  const int64_t b = s.miniBatch, f = s.headDim, BH = s.batch * s.heads;
  const Consts consts = loadConsts(s, tau, tauLast, gamma, lambda);
  Vec W(f * f), bias(f), Wn(f * f), bn(f), out(b * f);
  StepIn x;
  Cache cache;
  for (int64_t bi = 0; bi < s.batch; ++bi)
    for (int64_t hi = 0; hi < s.heads; ++hi) {
      const Head h = headOf(s, consts, hi);
      const int64_t bh = bi * s.heads + hi;
      toDouble(W0 + bh * f * f, f * f, W.data());
      toDouble(b0 + bh * f, f, bias.data());
      for (int64_t m = 0; m < s.n; ++m) {
        if (m % s.group == 0) {
          const int64_t g = m / s.group;
          for (int64_t i = 0; i < f * f; ++i)
            ckptW[(g * BH + bh) * f * f + i] = T(W[i]);
          for (int64_t e = 0; e < f; ++e)
            ckptB[(g * BH + bh) * f + e] = T(bias[e]);
        }
        loadStep(s, m, bi, hi, q, k, v, eta, x);
        stepForward(h, W.data(), bias.data(), x, cache, out.data(), Wn.data(), bn.data());
        for (int64_t t = 0; t < b; ++t)
          for (int64_t e = 0; e < f; ++e)
            o[s.tokenOffset(m, bi, hi, t) + e] = T(out[t * f + e]);
        roundTo<T>(Wn.data(), f * f);
        roundTo<T>(bn.data(), f);
        W.swap(Wn);
        bias.swap(bn);
      }
      for (int64_t i = 0; i < f * f; ++i)
        Wfinal[bh * f * f + i] = T(W[i]);
      for (int64_t e = 0; e < f; ++e)
        bfinal[bh * f + e] = T(bias[e]);
    }
}

template <typename T>
void innerLoopBackward(const InnerLoopShape &s, const T *ckptW, const T *ckptB, const T *q,
                       const T *k, const T *v, const T *eta, const T *tau, const T *tauLast,
                       const T *gamma, const T *lambda, const T *dWfinal, const T *dbfinal,
                       const T *dO, T *dW0, T *db0, T *dq, T *dk, T *dv, T *deta, T *dtau,
                       T *dtauLast, T *dgamma, T *dlambda) {
  check(s);
  const int64_t b = s.miniBatch, f = s.headDim, BH = s.batch * s.heads, K = s.group;
  const Consts consts = loadConsts(s, tau, tauLast, gamma, lambda);
  Vec accTau(b, 0.0), accGamma(s.heads * f, 0.0), accLambda(s.heads * f, 0.0);
  double accTauLast = 0;
  Vec dW(f * f), db(f), dWprev(f * f), dbprev(f), dOut(b * f), Wn(f * f), bn(f);
  std::vector<Vec> Ws(K, Vec(f * f)), bs(K, Vec(f));
  std::vector<StepIn> xs(K);
  std::vector<Cache> caches(K);
  StepGrad grad;
  for (int64_t bi = 0; bi < s.batch; ++bi)
    for (int64_t hi = 0; hi < s.heads; ++hi) {
      const Head h = headOf(s, consts, hi);
      const int64_t bh = bi * s.heads + hi;
      SharedGrad shared{accTau.data(), &accTauLast, accGamma.data() + hi * f,
                        accLambda.data() + hi * f};
      toDouble(dWfinal + bh * f * f, f * f, dW.data());
      toDouble(dbfinal + bh * f, f, db.data());
      for (int64_t g = s.n / K - 1; g >= 0; --g) {
        // Recompute the group's forward from its checkpoint, keeping every step's start state.
        toDouble(ckptW + (g * BH + bh) * f * f, f * f, Ws[0].data());
        toDouble(ckptB + (g * BH + bh) * f, f, bs[0].data());
        for (int64_t t = 0; t < K; ++t) {
          loadStep(s, g * K + t, bi, hi, q, k, v, eta, xs[t]);
          stepForward(h, Ws[t].data(), bs[t].data(), xs[t], caches[t], nullptr, Wn.data(),
                      bn.data());
          if (t + 1 < K) {
            roundTo<T>(Wn.data(), f * f);
            roundTo<T>(bn.data(), f);
            Ws[t + 1] = Wn;
            bs[t + 1] = bn;
          }
        }
        // Then back through the steps in reverse.
        for (int64_t t = K - 1; t >= 0; --t) {
          const int64_t m = g * K + t;
          for (int64_t t2 = 0; t2 < b; ++t2)
            toDouble(dO + s.tokenOffset(m, bi, hi, t2), f, dOut.data() + t2 * f);
          stepBackward(h, Ws[t].data(), xs[t], caches[t], dW.data(), db.data(), dOut.data(),
                       dWprev.data(), dbprev.data(), grad, shared);
          dW.swap(dWprev);
          db.swap(dbprev);
          for (int64_t j = 0; j < b; ++j) {
            const int64_t at = s.tokenOffset(m, bi, hi, j);
            for (int64_t e = 0; e < f; ++e) {
              dq[at + e] = T(grad.dQ[j * f + e]);
              dk[at + e] = T(grad.dK[j * f + e]);
              dv[at + e] = T(grad.dV[j * f + e]);
            }
            deta[s.etaOffset(m, bi, hi, j)] = T(grad.deta[j]);
          }
        }
      }
      for (int64_t i = 0; i < f * f; ++i)
        dW0[bh * f * f + i] = T(dW[i]);
      for (int64_t e = 0; e < f; ++e)
        db0[bh * f + e] = T(db[e]);
    }
  for (int64_t j = 0; j < b; ++j)
    dtau[j] = T(accTau[j]);
  *dtauLast = T(accTauLast);
  for (int64_t i = 0; i < s.heads * f; ++i) {
    dgamma[i] = T(accGamma[i]);
    dlambda[i] = T(accLambda[i]);
  }
}

#define TTT_INNER_LOOP(T)                                                                          \
  template void innerLoopForward<T>(const InnerLoopShape &, const T *, const T *, const T *,       \
                                    const T *, const T *, const T *, const T *, const T *,         \
                                    const T *, const T *, T *, T *, T *, T *, T *);                \
  template void innerLoopBackward<T>(const InnerLoopShape &, const T *, const T *, const T *,      \
                                     const T *, const T *, const T *, const T *, const T *,        \
                                     const T *, const T *, const T *, const T *, const T *, T *,   \
                                     T *, T *, T *, T *, T *, T *, T *, T *, T *);
TTT_INNER_LOOP(float)
TTT_INNER_LOOP(double)
#undef TTT_INNER_LOOP
} // namespace ttt::cpu
