// The host side of the inner-loop kernels' arguments, shared by InnerLoop.cu (exact kernels) and
// InnerLoopTensorCore.cu: each file has its own Args, with these fields under the same names.
// Included inside each file's anonymous namespace, after its Args and its partialDoubles (the
// workspace's per-block doubles, defined beside each file's kernels).
#pragma once

size_t align256(size_t x) { return (x + 255) / 256 * 256; }

// The shape and the strides, from the shape's own offsets (affine in m, bi, hi, t in both
// layouts).
template <class A> void setShape(const cpu::InnerLoopShape &s, A &a) {
  a.n = int(s.n);
  a.batch = int(s.batch);
  a.heads = int(s.heads);
  a.group = int(s.group);
  a.eps = decltype(a.eps)(s.eps);
  const int64_t e0 = s.etaOffset(0, 0, 0, 0), t0 = s.tokenOffset(0, 0, 0, 0);
  a.eM = s.etaOffset(1, 0, 0, 0) - e0;
  a.eB = s.etaOffset(0, 1, 0, 0) - e0;
  a.eH = s.etaOffset(0, 0, 1, 0) - e0;
  a.eT = int(s.etaOffset(0, 0, 0, 1) - e0);
  a.tM = s.tokenOffset(1, 0, 0, 0) - t0;
  a.tB = s.tokenOffset(0, 1, 0, 0) - t0;
  a.tH = s.tokenOffset(0, 0, 1, 0) - t0;
  a.tT = int(s.tokenOffset(0, 0, 0, 1) - t0);
}

// The inputs both directions read.
template <class A>
void setInputs(A &a, const float *q, const float *k, const float *v, const float *eta,
               const float *tau, const float *tauLast, const float *gamma, const float *lambda) {
  a.q = q;
  a.k = k;
  a.v = v;
  a.eta = eta;
  a.tau = tau;
  a.tauLast = tauLast;
  a.gamma = gamma;
  a.lambda = lambda;
}

// The forward's tensors, in the order of innerLoopForward's parameters.
template <class A>
void setForwardTensors(A &a, const float *W0, const float *b0, const float *q, const float *k,
                       const float *v, const float *eta, const float *tau, const float *tauLast,
                       const float *gamma, const float *lambda, float *Wfinal, float *bfinal,
                       float *o, float *ckptW, float *ckptB) {
  setInputs(a, q, k, v, eta, tau, tauLast, gamma, lambda);
  a.W0 = W0;
  a.b0 = b0;
  a.Wfinal = Wfinal;
  a.bfinal = bfinal;
  a.o = o;
  a.ckptWOut = ckptW;
  a.ckptBOut = ckptB;
}

// The backward's tensors, in the order of innerLoopBackward's parameters, and its workspace: the
// per-block partial sums, then the remat slots.
template <class A>
void setBackwardTensors(A &a, const cpu::InnerLoopShape &s, const float *ckptW, const float *ckptB,
                        const float *q, const float *k, const float *v, const float *eta,
                        const float *tau, const float *tauLast, const float *gamma,
                        const float *lambda, const float *dWfinal, const float *dbfinal,
                        const float *dO, float *dW0, float *db0, float *dq, float *dk, float *dv,
                        float *deta, void *workspace) {
  setInputs(a, q, k, v, eta, tau, tauLast, gamma, lambda);
  a.ckptW = ckptW;
  a.ckptB = ckptB;
  a.dWfinal = dWfinal;
  a.dbfinal = dbfinal;
  a.dO = dO;
  a.dW0 = dW0;
  a.db0 = db0;
  a.dq = dq;
  a.dk = dk;
  a.dv = dv;
  a.deta = deta;
  const int64_t BH = s.batch * s.heads;
  const int b = int(s.miniBatch), f = int(s.headDim);
  a.partial = static_cast<double *>(workspace);
  a.slots = reinterpret_cast<float *>(static_cast<char *>(workspace) +
                                      align256(size_t(BH * partialDoubles(b, f)) * sizeof(double)));
}
