// ttt-unroll-repeat: one copy of the repeated layer per layer index (see Passes.td).
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace ttt {
#define GEN_PASS_DEF_TTTUNROLLREPEAT
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt

using namespace mlir;
using namespace ttt;

namespace {
struct UnrollRepeat : ttt::impl::TTTUnrollRepeatBase<UnrollRepeat> {
  void runOnOperation() override {
    SmallVector<RepeatOp> repeats(getOperation().getBody().getOps<RepeatOp>());
    for (RepeatOp repeat : repeats) {
      OpBuilder builder(repeat);
      Block &body = repeat.getBody().front();
      Value stream = repeat.getInit();
      for (int64_t layer = 0; layer < int64_t(repeat.getCount()); ++layer) {
        IRMapping map;
        map.map(body.getArgument(0), stream);
        std::string index = std::to_string(layer);
        for (Operation &op : body.without_terminator()) {
          Operation *copy = builder.clone(op, map);
          if (auto param = dyn_cast<ParamOp>(copy)) {
            param.setName("layers." + index + "." + param.getName().str());
            std::string hf = param.getHfName().str();
            size_t at = hf.find(ParamOp::kLayerPlaceholder.str());
            hf.replace(at, ParamOp::kLayerPlaceholder.size(), index);
            param.setHfName(hf);
          }
        }
        stream = map.lookup(cast<YieldOp>(body.getTerminator()).getValue());
      }
      repeat.replaceAllUsesWith(stream);
      repeat.erase();
    }
  }
};
} // namespace
