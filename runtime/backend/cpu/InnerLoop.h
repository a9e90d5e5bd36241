// The fused TTT-Linear inner loop (tttp.inner_loop_fwd / tttp.inner_loop_bwd, PrimOps.td): a
// separate, direct implementation of the scan that ttt-expand emits, written as plain loops per
// (batch, head) with W and b carried locally, the dual-form step of spec 2.6 and the closed-form
// LayerNorm + L2 gradient of spec 2.4; the backward is derived by hand and recomputes each
// group's forward from its checkpoint. Everything is computed in double (the carried state is
// rounded to T after every step, as the unfused program stores it), in a fixed order: the
// results are deterministic.
#pragma once

#include <cstdint>

namespace ttt::cpu {
// q, k, v [n, B, H, b, f]; eta [n, B, H, b]; W [B, H, f, f]; b [B, H, f]; tau [b];
// tau_last []; gamma, lambda [H, f]; checkpoints [n / group, B, H, f, f] and [n / group, B, H, f].
// With tokenMajor, q, k, v, o and their cotangents are [B, n, b, H, f] and eta, deta [B, n, b, H]
// instead: the projections' own layout ([B, T, H, f] with T = n b), no transposes around the op.
struct InnerLoopShape {
  int64_t n = 0, batch = 0, heads = 0, miniBatch = 0, headDim = 0;
  int64_t group = 1; // mini-batches per rematerialization group; divides n
  double eps = 1e-6; // of both LayerNorms
  bool tokenMajor = false;

  // The shape of a plan's inner_loop_fwd/bwd from q's dimensions (5 of them).
  static InnerLoopShape ofQ(const int64_t *q, int64_t group, double eps, bool tokenMajor) {
    InnerLoopShape s;
    s.n = tokenMajor ? q[1] : q[0];
    s.batch = tokenMajor ? q[0] : q[1];
    s.heads = tokenMajor ? q[3] : q[2];
    s.miniBatch = tokenMajor ? q[2] : q[3];
    s.headDim = q[4];
    s.group = group;
    s.eps = eps;
    s.tokenMajor = tokenMajor;
    return s;
  }

  // Element offset of token t of mini-batch m of (batch bi, head hi) in q, k, v, o and their
  // cotangents (its headDim values follow contiguously), and in eta and deta.
  int64_t tokenOffset(int64_t m, int64_t bi, int64_t hi, int64_t t) const {
    return tokenMajor ? (((bi * n + m) * miniBatch + t) * heads + hi) * headDim
                      : (((m * batch + bi) * heads + hi) * miniBatch + t) * headDim;
  }
  int64_t etaOffset(int64_t m, int64_t bi, int64_t hi, int64_t t) const {
    return tokenMajor ? ((bi * n + m) * miniBatch + t) * heads + hi
                      : ((m * batch + bi) * heads + hi) * miniBatch + t;
  }
};

// Forward: W_final, b_final, o and the state at the start of every group. Throws
// std::invalid_argument on a bad shape (group not dividing n).
template <typename T>
void innerLoopForward(const InnerLoopShape &s, const T *W0, const T *b0, const T *q, const T *k,
                      const T *v, const T *eta, const T *tau, const T *tauLast, const T *gamma,
                      const T *lambda, T *Wfinal, T *bfinal, T *o, T *ckptW, T *ckptB);

// Backward: the cotangents of every forward input given those of (W_final, b_final, o).
template <typename T>
void innerLoopBackward(const InnerLoopShape &s, const T *ckptW, const T *ckptB, const T *q,
                       const T *k, const T *v, const T *eta, const T *tau, const T *tauLast,
                       const T *gamma, const T *lambda, const T *dWfinal, const T *dbfinal,
                       const T *dO, T *dW0, T *db0, T *dq, T *dk, T *dv, T *deta, T *dtau,
                       T *dtauLast, T *dgamma, T *dlambda);
} // namespace ttt::cpu
