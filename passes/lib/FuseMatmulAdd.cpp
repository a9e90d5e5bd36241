// ttt-fuse-matmul-add: `add(x, matmul(a, b))` -> `tttp.matmul_add a, b, x` (Passes.td). The GEMM
// reads x as its C input, so the sum costs one read of x instead of a separate kernel that reads
// both and writes a third tensor; every element is rounded as the add rounded it.
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace ttt {
#define GEN_PASS_DEF_TTTFUSEMATMULADD
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt

using namespace mlir;
namespace p = ttt::prim;

namespace {
// The matmul operand of `add` that can absorb it: read only by this add, in its block, and of
// the add's type (no broadcast).
p::MatmulOp absorbingMatmul(p::BinaryOp add, Value operand) {
  auto mm = operand.getDefiningOp<p::MatmulOp>();
  if (!mm || !mm->hasOneUse() || mm->getBlock() != add->getBlock() ||
      mm.getType() != add.getType())
    return nullptr;
  return mm;
}

struct FuseMatmulAdd : public ttt::impl::TTTFuseMatmulAddBase<FuseMatmulAdd> {
  void runOnOperation() override {
    SmallVector<p::BinaryOp> adds;
    getOperation().walk([&](p::BinaryOp op) {
      if (op.getKind() == "add" && op.getLhs().getType() == op.getType() &&
          op.getRhs().getType() == op.getType())
        adds.push_back(op);
    });
    for (p::BinaryOp add : adds) {
      // The later-defined matmul takes the other operand as its addend (either would do).
      p::MatmulOp lhs = absorbingMatmul(add, add.getLhs()),
                  rhs = absorbingMatmul(add, add.getRhs());
      p::MatmulOp mm = rhs && (!lhs || lhs->isBeforeInBlock(rhs)) ? rhs : lhs;
      if (!mm)
        continue;
      Value addend = mm == rhs ? add.getLhs() : add.getRhs();
      OpBuilder b(add);
      auto fused = b.create<p::MatmulAddOp>(add.getLoc(), add.getType(), mm.getA(), mm.getB(),
                                            addend, mm.getTransposeA(), mm.getTransposeB());
      add.getResult().replaceAllUsesWith(fused.getResult());
      add.erase();
      mm.erase();
    }
  }
};
} // namespace
