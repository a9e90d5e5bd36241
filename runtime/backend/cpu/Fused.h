// Kernels of the fused primitives of ttt-fuse-elementwise (PrimOps.td): tttp.fused_elementwise,
// which evaluates a chain of elementwise primitives in one pass over the result, and the tied
// lm_head + cross-entropy tttp.lm_head_xent / lm_head_xent_bwd, which never hold the full
// [N, V] logits. Same conventions as Kernels.h: float or double, dense row-major.
#pragma once

#include "runtime/backend/cpu/Kernels.h"

#include <string>
#include <vector>

namespace ttt::cpu {
// --- fused elementwise --------------------------------------------------------------------------
// One step of the expression program: a binary op on two slots, a unary op on one, or the
// backward of a unary op on (x, y, dy). Slots 0 .. inputs-1 are the inputs, then one per step.
struct FusedStep {
  enum class Kind { binary, unary, unaryBackward } kind = Kind::binary;
  BinaryOp binary = BinaryOp::add;
  UnaryOp unary = UnaryOp::neg;
  int64_t args[3] = {-1, -1, -1};
  double alpha = 0.0;
};
// Parses the op names ("mul", "silu", "silu_bwd", ...), 3 slots and one alpha per step; "" or an
// error naming the bad step.
std::string parseFusedSteps(const std::vector<std::string> &names, const int64_t *args,
                            const double *alphas, int64_t inputs, std::vector<FusedStep> &steps);
// out (shape `outShape`) = the last step's value per element. An input with as many elements as
// out is read in row-major order; a smaller one broadcasts to outShape (numpy rules). Every step
// is computed and rounded exactly as its unfused kernel (binary, unary, unaryBackward) does.
template <typename T>
void fusedElementwise(const std::vector<FusedStep> &steps, const std::vector<const T *> &inputs,
                      const std::vector<Shape> &inputShapes, const Shape &outShape, T *out);

// --- tied lm_head + cross-entropy ---------------------------------------------------------------
// For n rows h [n, dim], table [vocab, dim]: with logits = h table^T (computed `chunk` columns at
// a time, an online log-sum-exp in double), loss[i] = lse[i] - logits[i, targets[i]],
// mask[i] = 1, lse[i] the row's log-sum-exp; an ignored target gives 0, 0, 0. "" or an error
// naming a target outside [0, vocab).
template <typename T>
std::string lmHeadXent(const T *h, const T *table, const int32_t *targets, int64_t n,
                       int64_t dim, int64_t vocab, int64_t ignoreToken, int64_t chunk, T *loss,
                       T *mask, T *lse);
// G = dloss * (exp(logits - lse) - onehot(targets)) (0 on ignored rows), recomputed per chunk:
// dh = G table [n, dim], dtable = G^T h [vocab, dim] (both overwritten).
template <typename T>
void lmHeadXentBackward(const T *h, const T *table, const int32_t *targets, const T *lse,
                        const T *dloss, int64_t n, int64_t dim, int64_t vocab,
                        int64_t ignoreToken, int64_t chunk, T *dh, T *dtable);
} // namespace ttt::cpu
