// ttt-record-cost and the kernel/byte count of a program (KernelCost.h).
#include "ttt/Passes/KernelCost.h"
#include "MemoryPlan.h"
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace ttt {
#define GEN_PASS_DEF_TTTRECORDCOST
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt

using namespace mlir;
namespace p = ttt::prim;

namespace {
int64_t bytesOf(Value v) { return ttt::memory::valueBytes(v).value_or(0); }

void count(Block &block, int64_t times, ttt::KernelCost &cost) {
  for (Operation &op : block) {
    if (auto scan = dyn_cast<p::ScanOp>(op)) {
      count(scan.getBody().front(), times * scan.getCount(), cost);
      continue;
    }
    if (isa<p::ParamOp, p::InputOp, p::OutputOp, p::YieldOp, p::BucketReadyOp>(op))
      continue;
    // A reshape that the memory plan made a view of its operand's buffer moves nothing.
    if (ttt::memory::isAliasingReshape(&op))
      continue;
    int64_t bytes = 0;
    for (Value v : op.getOperands())
      bytes += bytesOf(v);
    for (Value v : op.getResults())
      bytes += bytesOf(v);
    cost.kernels += times;
    cost.bytes += times * bytes;
  }
}

struct RecordCost : public ttt::impl::TTTRecordCostBase<RecordCost> {
  void runOnOperation() override {
    for (p::ProgramOp program : getOperation().getOps<p::ProgramOp>()) {
      ttt::KernelCost c = ttt::kernelCost(program);
      Builder b(program);
      program->setAttr("tttp.cost_unfused",
                       b.getDictionaryAttr({b.getNamedAttr("bytes", b.getI64IntegerAttr(c.bytes)),
                                            b.getNamedAttr("kernels",
                                                           b.getI64IntegerAttr(c.kernels))}));
    }
  }
};
} // namespace

ttt::KernelCost ttt::kernelCost(p::ProgramOp program) {
  KernelCost cost;
  count(program.getBody().front(), 1, cost);
  return cost;
}
