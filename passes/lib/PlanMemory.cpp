// ttt-plan-memory: gives every tensor of every tttp.program a buffer in one of the long-lived
// regions or at an offset of the program's arena (Passes.td describes the rules and attributes).
#include "MemoryPlan.h"
#include "ttt/Dialect/TTT/TTTModel.h"
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"

#include <algorithm>

namespace ttt {
#define GEN_PASS_DEF_TTTPLANMEMORY
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt

using namespace mlir;
using namespace ttt::memory;
namespace p = ttt::prim;

namespace {
struct Buffer {
  int64_t region = -1, offset = 0, size = 0;
};

// The parameter layout shared by every program (params and grads regions): the model's
// declaration order when the module holds the ttt.model, else the order of first reads.
struct ParamLayout {
  llvm::StringMap<Buffer> slots; // name -> (offset, size)
  int64_t bytes = 0;
};

FailureOr<ParamLayout> layoutParams(ModuleOp module) {
  llvm::StringMap<std::pair<Type, Operation *>> types;
  SmallVector<std::string> order;
  for (auto model : module.getOps<ttt::ModelOp>())
    for (ttt::ParamInstance &pi : ttt::enumerateParams(model))
      order.push_back(pi.name);
  for (auto program : module.getOps<p::ProgramOp>()) {
    WalkResult walk = program.walk([&](p::ParamOp param) {
      auto [it, inserted] = types.try_emplace(param.getName(), param.getType(), param);
      if (inserted) {
        if (llvm::find(order, param.getName().str()) == order.end())
          order.push_back(param.getName().str());
        return WalkResult::advance();
      }
      if (it->second.first != param.getType()) {
        param.emitOpError() << "reads parameter '" << param.getName() << "' as "
                            << param.getType() << " but another program reads it as "
                            << it->second.first;
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return failure();
  }
  ParamLayout layout;
  for (const std::string &name : order) {
    auto it = types.find(name);
    if (it == types.end())
      continue; // declared but read by no program: no slot needed
    std::optional<int64_t> size = tensorBytes(it->second.first);
    if (!size) {
      it->second.second->emitOpError() << "has no byte size for " << it->second.first;
      return failure();
    }
    layout.slots[name] = {Params, layout.bytes, *size};
    layout.bytes += alignUp(*size);
  }
  return layout;
}

// Is `v` a checkpoint: a result of a top-level forward inner loop (a forward scan, or the fused
// `tttp.inner_loop_fwd`) read only by top-level backward ones (as a scanned input of a reversed
// scan, or by `tttp.inner_loop_bwd`)? These are the carried W, b at every remat group start.
bool isCheckpoint(Value v, Block &top) {
  Operation *def = v.getDefiningOp();
  if (!def || def->getBlock() != &top || v.use_empty())
    return false;
  auto scan = dyn_cast<p::ScanOp>(def);
  if (!(scan && !scan.getReverse()) && def->getName().getStringRef() != "tttp.inner_loop_fwd")
    return false;
  for (OpOperand &use : v.getUses()) {
    Operation *user = use.getOwner();
    if (user->getBlock() != &top)
      return false;
    if (user->getName().getStringRef() == "tttp.inner_loop_bwd")
      continue;
    auto reader = dyn_cast<p::ScanOp>(user);
    if (!reader || !reader.getReverse() || use.getOperandNumber() < reader.getInits().size())
      return false;
  }
  return true;
}

struct ArenaItem {
  Value value;
  Interval live;
  int64_t size, index;
};

// Greedy by size, best fit (the arena planners of TFLite and Triton work this way): the
// largest buffers are placed first; each takes the smallest gap between the buffers already
// placed whose lifetimes overlap its own that fits it, or goes on top of them.
int64_t packArena(std::vector<ArenaItem> &items, DenseMap<Value, Buffer> &out) {
  std::vector<ArenaItem *> order;
  for (ArenaItem &item : items)
    order.push_back(&item);
  std::stable_sort(order.begin(), order.end(), [](const ArenaItem *a, const ArenaItem *b) {
    if (a->size != b->size)
      return a->size > b->size;
    return a->live.start < b->live.start;
  });
  struct Placed {
    Interval live;
    int64_t offset, size;
  };
  std::vector<Placed> placed;
  int64_t top = 0;
  std::vector<const Placed *> conflicts;
  for (ArenaItem *item : order) {
    conflicts.clear();
    for (const Placed &p : placed)
      if (p.live.overlaps(item->live))
        conflicts.push_back(&p);
    std::sort(conflicts.begin(), conflicts.end(),
              [](const Placed *a, const Placed *b) { return a->offset < b->offset; });
    int64_t candidate = 0, best = -1, bestGap = INT64_MAX;
    for (const Placed *c : conflicts) {
      int64_t gap = c->offset - candidate;
      if (gap >= item->size && gap < bestGap) {
        best = candidate;
        bestGap = gap;
      }
      candidate = std::max(candidate, alignUp(c->offset + c->size));
    }
    int64_t offset = best >= 0 ? best : candidate;
    placed.push_back({item->live, offset, item->size});
    out[item->value] = {Arena, offset, item->size};
    top = std::max(top, alignUp(offset + item->size));
  }
  return top;
}

// The most bytes (256-aligned sizes) live at any one position: no packing can be smaller.
int64_t arenaPeak(const std::vector<ArenaItem> &items, int64_t positions) {
  std::vector<int64_t> delta(positions + 1, 0);
  for (const ArenaItem &item : items) {
    delta[item.live.start] += alignUp(item.size);
    delta[item.live.end + 1] -= alignUp(item.size);
  }
  int64_t live = 0, peak = 0;
  for (int64_t d : delta)
    peak = std::max(peak, live += d);
  return peak;
}

ArrayAttr buffersAttr(OpBuilder &b, ValueRange values, const DenseMap<Value, Buffer> &buffers) {
  SmallVector<Attribute> entries;
  for (Value v : values) {
    const Buffer &buf = buffers.find(v)->second;
    entries.push_back(b.getI64ArrayAttr({buf.region, buf.offset, buf.size}));
  }
  return b.getArrayAttr(entries);
}

struct PlanMemory : ttt::impl::TTTPlanMemoryBase<PlanMemory> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<ParamLayout> params = layoutParams(module);
    if (failed(params))
      return signalPassFailure();
    for (auto program : module.getOps<p::ProgramOp>())
      if (failed(plan(program, *params)))
        return signalPassFailure();
  }

  LogicalResult plan(p::ProgramOp program, const ParamLayout &params) {
    Block &top = program.getBody().front();
    ProgramLiveness liveness(program);
    DenseMap<Value, Buffer> buffers;

    // Gradients land in their parameter's slot of the grads region.
    for (auto out : top.getOps<p::OutputOp>()) {
      if (!out.getName().starts_with("grad:"))
        continue;
      StringRef name = out.getName().drop_front(5);
      auto slot = params.slots.find(name);
      std::optional<int64_t> size = tensorBytes(out.getValue().getType());
      if (slot == params.slots.end() || !size || *size != slot->second.size)
        return out.emitOpError() << "gradient of '" << name
                                 << "' matches no parameter slot of the same size";
      if (buffers.count(out.getValue()))
        return out.emitOpError() << "writes a value that is already the gradient of another "
                                    "parameter; the planner needs one value per gradient";
      buffers[out.getValue()] = {Grads, slot->second.offset, *size};
    }

    std::vector<ArenaItem> arena;
    int64_t checkpointBytes = 0;
    for (Value v : liveness.values) {
      std::optional<int64_t> size = tensorBytes(v.getType());
      if (!size) {
        Operation *at = v.getDefiningOp() ? v.getDefiningOp() : v.getParentBlock()->getParentOp();
        return at->emitOpError() << "has a tensor of unknown byte size: " << v.getType();
      }
      if (buffers.count(v))
        continue; // a gradient
      if (auto param = v.getDefiningOp<p::ParamOp>()) {
        buffers[v] = params.slots.find(param.getName())->second;
        continue;
      }
      if (isCheckpoint(v, top)) {
        buffers[v] = {Checkpoints, checkpointBytes, *size};
        checkpointBytes += alignUp(*size);
        continue;
      }
      arena.push_back({v, liveness.intervals.lookup(v), *size, int64_t(arena.size())});
    }
    int64_t arenaBytes = packArena(arena, buffers);
    int64_t peak = arenaPeak(arena, liveness.numPositions);

    OpBuilder b(program.getContext());
    program.walk([&](Operation *op) {
      if (op->getNumResults())
        op->setAttr(kBuffersAttr, buffersAttr(b, op->getResults(), buffers));
      if (auto scan = dyn_cast<p::ScanOp>(op))
        scan->setAttr(kArgBuffersAttr,
                      buffersAttr(b, scan.getBody().front().getArguments(), buffers));
    });
    NamedAttrList summary;
    summary.set("alignment", b.getI64IntegerAttr(kAlignment));
    summary.set("params", b.getI64IntegerAttr(params.bytes));
    summary.set("grads", b.getI64IntegerAttr(params.bytes));
    summary.set("moments", b.getI64IntegerAttr(2 * params.bytes));
    summary.set("checkpoints", b.getI64IntegerAttr(checkpointBytes));
    summary.set("arena", b.getI64IntegerAttr(arenaBytes));
    summary.set("arena_peak", b.getI64IntegerAttr(peak));
    program->setAttr(kSummaryAttr, summary.getDictionary(program.getContext()));
    return success();
  }
};
} // namespace
