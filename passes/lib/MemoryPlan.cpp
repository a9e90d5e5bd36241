// Liveness intervals and sizes shared by the memory planner and its verifier (MemoryPlan.h).
#include "MemoryPlan.h"

#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;
namespace p = ttt::prim;

namespace ttt::memory {
StringRef regionName(int64_t region) {
  switch (region) {
  case Params: return "params";
  case Grads: return "grads";
  case Moments: return "moments";
  case Checkpoints: return "checkpoints";
  case Arena: return "arena";
  }
  return "(unknown)";
}

std::optional<int64_t> tensorBytes(Type type) {
  auto shaped = dyn_cast<ShapedType>(type);
  if (!shaped || !shaped.hasStaticShape())
    return std::nullopt;
  Type e = shaped.getElementType();
  int64_t element;
  if (e.isF64())
    element = 8;
  else if (e.isF32() || e.isInteger(32))
    element = 4;
  else if (e.isBF16() || e.isF16())
    element = 2;
  else
    return std::nullopt;
  return shaped.getNumElements() * element;
}

std::optional<int64_t> valueBytes(Value v) {
  Operation *def = v.getDefiningOp();
  auto shaped = dyn_cast<ShapedType>(v.getType());
  if (def && def->hasAttr(kStoreBf16Attr) && shaped && shaped.hasStaticShape() &&
      shaped.getElementType().isF32())
    return shaped.getNumElements() * 2;
  return tensorBytes(v.getType());
}

std::optional<std::array<int64_t, 3>> recordedBuffer(Value v) {
  ArrayAttr list;
  unsigned index;
  if (auto r = dyn_cast<OpResult>(v)) {
    list = r.getOwner()->getAttrOfType<ArrayAttr>(kBuffersAttr);
    index = r.getResultNumber();
  } else {
    auto a = cast<BlockArgument>(v);
    Operation *parent = a.getOwner()->getParentOp();
    list = parent ? parent->getAttrOfType<ArrayAttr>(kArgBuffersAttr) : ArrayAttr();
    index = a.getArgNumber();
  }
  auto entry = list && index < list.size() ? dyn_cast<ArrayAttr>(list[index]) : ArrayAttr();
  if (!entry || entry.size() != 3)
    return std::nullopt;
  std::array<int64_t, 3> buffer;
  for (unsigned i = 0; i < 3; ++i) {
    auto n = dyn_cast<IntegerAttr>(entry[i]);
    if (!n)
      return std::nullopt;
    buffer[i] = n.getInt();
  }
  return buffer;
}

bool isAliasingReshape(Operation *op) {
  auto reshape = dyn_cast<p::ReshapeOp>(op);
  if (!reshape)
    return false;
  std::optional<std::array<int64_t, 3>> result = recordedBuffer(reshape.getResult());
  return result && result == recordedBuffer(reshape.getInput());
}

namespace {
// Pre-order positions: each op's [own position, last nested position].
void number(Block &block, int64_t &next, DenseMap<Operation *, Interval> &span) {
  for (Operation &op : block) {
    int64_t start = next++;
    for (mlir::Region &r : op.getRegions())
      for (Block &b : r)
        number(b, next, span);
    span[&op] = {start, next - 1};
  }
}
} // namespace

ProgramLiveness::ProgramLiveness(p::ProgramOp program) {
  DenseMap<Operation *, Interval> span;
  Block &top = program.getBody().front();
  int64_t next = 0;
  number(top, next, span);
  numPositions = next;
  const int64_t last = std::max<int64_t>(next - 1, 0);

  // The end of a value's life: the latest use, each use lifted to the op of the value's own
  // block that contains it (a read inside a nested scan lasts until that scan ends).
  auto lastUse = [&](Value v, int64_t start) {
    int64_t end = start;
    Block *home = v.getParentBlock();
    for (OpOperand &use : v.getUses()) {
      Operation *user = home->findAncestorOpInBlock(*use.getOwner());
      if (!user)
        continue;
      if (isa<p::OutputOp>(user))
        end = last;
      else
        end = std::max(end, span[user].end);
    }
    return end;
  };

  std::function<void(Block &)> visit = [&](Block &block) {
    Operation *parent = block.getParentOp();
    bool inBody = parent != program.getOperation();
    Interval whole = inBody ? span[parent] : Interval{};
    for (Operation &op : block) {
      for (Value r : op.getResults()) {
        values.push_back(r);
        if (inBody) {
          intervals[r] = whole;
          continue;
        }
        int64_t start = isa<p::InputOp>(op) ? 0 : span[&op].start;
        intervals[r] = {start, lastUse(r, span[&op].end)};
      }
      for (mlir::Region &region : op.getRegions())
        for (Block &b : region) {
          for (BlockArgument a : b.getArguments()) {
            values.push_back(a);
            intervals[a] = span[&op];
          }
          visit(b);
        }
    }
  };
  visit(top);
}
} // namespace ttt::memory
