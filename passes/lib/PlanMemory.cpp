// ttt-plan-memory: gives every tensor of every tttp.program a buffer in one of the long-lived
// regions or at an offset of the program's arena, a reshape the buffer of its operand (Passes.td
// describes the rules and attributes).
#include "MemoryPlan.h"
#include "ttt/Dialect/TTT/TTTModel.h"
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"
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

// Values that share one buffer: a root (any value that is not an aliasing reshape's result)
// and the reshapes of it, transitively (`tttp.reshape` is a view of its operand's bytes).
struct AliasClass {
  SmallVector<Value, 2> members; // the root first, then in definition order
  std::optional<int64_t> grad;   // offset of the grads slot, when a member is a gradient output
};

// Is the class rooted at `root` a checkpoint: a result of a top-level forward inner loop (a
// forward scan, or the fused `tttp.inner_loop_fwd`) read, directly or through the class's
// reshapes, only by top-level backward ones (as a scanned input of a reversed scan, or by
// `tttp.inner_loop_bwd`)? These are the carried W, b at every remat group start.
bool isCheckpoint(const AliasClass &cls, Block &top, const DenseMap<Value, Value> &rootOf) {
  Value root = cls.members.front();
  Operation *def = root.getDefiningOp();
  if (!def || def->getBlock() != &top || cls.grad)
    return false;
  auto scan = dyn_cast<p::ScanOp>(def);
  if (!(scan && !scan.getReverse()) && def->getName().getStringRef() != "tttp.inner_loop_fwd")
    return false;
  bool read = false;
  for (Value member : cls.members)
    for (OpOperand &use : member.getUses()) {
      Operation *user = use.getOwner();
      if (isa<p::ReshapeOp>(user) && rootOf.lookup(user->getResult(0)) == root)
        continue; // a view in the same buffer
      if (user->getBlock() != &top)
        return false;
      read = true;
      if (user->getName().getStringRef() == "tttp.inner_loop_bwd")
        continue;
      auto reader = dyn_cast<p::ScanOp>(user);
      if (!reader || !reader.getReverse() || use.getOperandNumber() < reader.getInits().size())
        return false;
    }
  return read;
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
    DenseMap<Value, Buffer> grads;
    for (auto out : top.getOps<p::OutputOp>()) {
      if (!out.getName().starts_with("grad:"))
        continue;
      StringRef name = out.getName().drop_front(5);
      auto slot = params.slots.find(name);
      std::optional<int64_t> size = tensorBytes(out.getValue().getType());
      if (slot == params.slots.end() || !size || *size != slot->second.size)
        return out.emitOpError() << "gradient of '" << name
                                 << "' matches no parameter slot of the same size";
      if (grads.count(out.getValue()))
        return out.emitOpError() << "writes a value that is already the gradient of another "
                                    "parameter; the planner needs one value per gradient";
      grads[out.getValue()] = {Grads, slot->second.offset, *size};
    }

    // Alias classes, in definition order (a reshape's operand is defined before it): the result
    // of a reshape joins its operand's class, unless it is a gradient that cannot take the
    // class's buffer (the class already holds a gradient, or its root is a parameter, an input
    // or a scan body's argument); then that reshape stays a copy.
    DenseMap<Value, Value> rootOf;
    llvm::MapVector<Value, AliasClass> classes;
    for (Value v : liveness.values) {
      std::optional<int64_t> size = valueBytes(v);
      if (!size) {
        Operation *at = v.getDefiningOp() ? v.getDefiningOp() : v.getParentBlock()->getParentOp();
        return at->emitOpError() << "has a tensor of unknown byte size: " << v.getType();
      }
      auto grad = grads.find(v);
      Value root = v;
      if (auto reshape = v.getDefiningOp<p::ReshapeOp>()) {
        Value candidate = rootOf.lookup(reshape.getInput());
        AliasClass &cls = classes.find(candidate)->second;
        Operation *def = candidate.getDefiningOp();
        bool gradOk =
            grad == grads.end() || (!cls.grad && def && !isa<p::ParamOp, p::InputOp>(def));
        if (valueBytes(candidate) == size && gradOk)
          root = candidate;
      }
      rootOf[v] = root;
      AliasClass &cls = classes[root];
      cls.members.push_back(v);
      if (grad != grads.end())
        cls.grad = grad->second.offset;
    }

    std::vector<ArenaItem> arena;
    int64_t checkpointBytes = 0;
    for (auto &[root, cls] : classes) {
      int64_t size = *valueBytes(root);
      if (cls.grad) {
        buffers[root] = {Grads, *cls.grad, size};
      } else if (auto param = root.getDefiningOp<p::ParamOp>()) {
        buffers[root] = params.slots.find(param.getName())->second;
      } else if (isCheckpoint(cls, top, rootOf)) {
        buffers[root] = {Checkpoints, checkpointBytes, size};
        checkpointBytes += alignUp(size);
      } else {
        // One arena buffer for the class, live from its first definition to its last use.
        Interval live = liveness.intervals.lookup(root);
        for (Value member : cls.members)
          live = live.hull(liveness.intervals.lookup(member));
        arena.push_back({root, live, size, int64_t(arena.size())});
      }
    }
    int64_t arenaBytes = packArena(arena, buffers);
    int64_t peak = arenaPeak(arena, liveness.numPositions);
    for (auto &[root, cls] : classes) {
      const Buffer shared = buffers.lookup(root);
      for (Value member : cls.members)
        buffers[member] = shared;
    }

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
