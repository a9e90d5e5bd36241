// ttt-store-bf16: in bf16 plans, values that only ever reach matmuls are stored as bf16 by their
// producer (Passes.td). A matmul of a bf16 plan rounds its operands to bf16 anyway, so storing
// the rounded value gives the same bits while its producer writes half the bytes and no cast
// runs before each matmul that reads it.
#include "MemoryPlan.h"
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace ttt {
#define GEN_PASS_DEF_TTTSTOREBF16
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt

using namespace mlir;
namespace p = ttt::prim;

namespace {
// Every reader of `v` is a matmul (either operand) or the hidden operand of the fused lm_head,
// directly or through reshapes, which are collected in `views`: they carry the bf16 storage on.
bool onlyMatmulOperand(Value v, SmallVectorImpl<Operation *> &views) {
  if (v.use_empty())
    return false;
  for (OpOperand &use : v.getUses()) {
    Operation *user = use.getOwner();
    if (isa<p::MatmulOp>(user))
      continue;
    if (isa<p::LmHeadXentOp, p::LmHeadXentBwdOp>(user) && use.getOperandNumber() == 0)
      continue;
    if (auto reshape = dyn_cast<p::ReshapeOp>(user)) {
      views.push_back(reshape);
      if (!onlyMatmulOperand(reshape.getResult(), views))
        return false;
      continue;
    }
    return false;
  }
  return true;
}

struct StoreBf16 : public ttt::impl::TTTStoreBf16Base<StoreBf16> {
  void runOnOperation() override {
    Builder b(&getContext());
    for (p::ProgramOp program : getOperation().getOps<p::ProgramOp>()) {
      // Top level only: a scan body's values are copied per iteration as fp32.
      for (Operation &op : program.getBody().front()) {
        if (!isa<p::RmsNormOp, p::BinaryOp, p::FusedElementwiseOp>(op) || op.getNumResults() != 1)
          continue;
        auto type = dyn_cast<ShapedType>(op.getResult(0).getType());
        if (!type || !type.getElementType().isF32())
          continue;
        SmallVector<Operation *> views;
        if (!onlyMatmulOperand(op.getResult(0), views))
          continue;
        op.setAttr(ttt::memory::kStoreBf16Attr, b.getUnitAttr());
        for (Operation *view : views)
          view->setAttr(ttt::memory::kStoreBf16Attr, b.getUnitAttr());
      }
    }
  }
};
} // namespace
