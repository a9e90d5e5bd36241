// ttt-verify-memory: checks the memory plan that ttt-plan-memory recorded (Passes.td): every
// tensor has a buffer of its size inside its region, and no two buffers of a packed region
// are live at the same time and share a byte, except a reshape's result that is exactly its
// operand's buffer (a view: the two are one buffer, live as long as either).
#include "MemoryPlan.h"
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"

#include <algorithm>

namespace ttt {
#define GEN_PASS_DEF_TTTVERIFYMEMORY
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt

using namespace mlir;
using namespace ttt::memory;
namespace p = ttt::prim;

namespace {
struct Assigned {
  Value value;
  int64_t region, offset, size;
  Interval live;
  int64_t views = 0; // reshapes sharing this buffer (see the classes below)
};

// The op that owns a value's assignment, and how the value is called there.
std::pair<Operation *, std::string> owner(Value v) {
  if (auto r = dyn_cast<OpResult>(v))
    return {r.getOwner(), "result #" + std::to_string(r.getResultNumber())};
  auto a = cast<BlockArgument>(v);
  return {a.getOwner()->getParentOp(), "body argument #" + std::to_string(a.getArgNumber())};
}

// How a buffer is called in a report: the value, and the reshapes that view it, if any.
std::string named(const std::string &name, int64_t views) {
  if (!views)
    return name;
  return name + " (with " + std::to_string(views) + " reshape" + (views > 1 ? "s" : "") +
         " viewing it)";
}

std::string range(int64_t offset, int64_t size) {
  return "[" + std::to_string(offset) + ", " + std::to_string(offset + size) + ")";
}

struct VerifyMemory : ttt::impl::TTTVerifyMemoryBase<VerifyMemory> {
  void runOnOperation() override {
    bool ok = true;
    for (auto program : getOperation().getOps<p::ProgramOp>())
      ok &= succeeded(verify(program));
    if (!ok)
      signalPassFailure();
  }

  LogicalResult verify(p::ProgramOp program) {
    auto summary = program->getAttrOfType<DictionaryAttr>(kSummaryAttr);
    int64_t regionBytes[kNumRegions];
    for (int64_t r = 0; r < kNumRegions; ++r) {
      auto size = summary ? summary.getAs<IntegerAttr>(regionName(r)) : IntegerAttr();
      if (!size)
        return program.emitOpError()
               << "has no memory plan summary ('" << kSummaryAttr << "' with the size of region '"
               << regionName(r) << "'); run ttt-plan-memory first";
      regionBytes[r] = size.getInt();
    }

    ProgramLiveness liveness(program);
    std::vector<Assigned> assigned;
    bool ok = true;
    auto read = [&](Operation *op, StringRef attrName, ValueRange values, StringRef what) {
      auto list = op->getAttrOfType<ArrayAttr>(attrName);
      if (!list || list.size() != values.size()) {
        op->emitOpError() << "has no buffer for every " << what << " ('" << attrName
                          << "' needs " << values.size() << " entries); run ttt-plan-memory";
        ok = false;
        return;
      }
      for (auto [i, entry, v] : llvm::enumerate(list, values)) {
        auto triple = dyn_cast<ArrayAttr>(entry);
        SmallVector<int64_t, 3> f;
        if (triple && triple.size() == 3)
          for (Attribute a : triple)
            if (auto n = dyn_cast<IntegerAttr>(a))
              f.push_back(n.getInt());
        if (f.size() != 3) {
          op->emitOpError() << what << " #" << i << ": buffer " << entry
                            << " is not [region, offset, size]";
          ok = false;
          continue;
        }
        auto [region, offset, size] = std::tuple(f[0], f[1], f[2]);
        std::optional<int64_t> need = valueBytes(v);
        if (region < 0 || region >= kNumRegions) {
          op->emitOpError() << what << " #" << i << ": region " << region
                            << " does not exist (0 params, 1 grads, 2 moments, 3 checkpoints, "
                               "4 arena)";
          ok = false;
        } else if (!need || size != *need) {
          op->emitOpError() << what << " #" << i << ": buffer of " << size
                            << " bytes for a tensor of " << (need ? *need : -1) << " bytes";
          ok = false;
        } else if (offset < 0 || offset + size > regionBytes[region]) {
          op->emitOpError() << what << " #" << i << ": buffer " << range(offset, size)
                            << " lies outside region '" << regionName(region) << "' of "
                            << regionBytes[region] << " bytes";
          ok = false;
        } else if (region != Params && offset % kAlignment != 0) {
          op->emitOpError() << what << " #" << i << ": offset " << offset
                            << " is not a multiple of " << kAlignment;
          ok = false;
        } else {
          assigned.push_back({v, region, offset, size, liveness.intervals.lookup(v)});
        }
      }
    };
    program.walk([&](Operation *op) {
      if (op->getNumResults())
        read(op, kBuffersAttr, op->getResults(), "result");
      if (auto scan = dyn_cast<p::ScanOp>(op))
        read(op, kArgBuffersAttr, scan.getBody().front().getArguments(), "body argument");
    });

    // A reshape whose buffer is exactly its operand's is a view of it: the two are one buffer,
    // live for the union (hull) of their lifetimes; every other reshape is a copy, checked
    // like any other value. Classes by union-find over the assignments.
    DenseMap<Value, size_t> index;
    for (auto [i, a] : llvm::enumerate(assigned))
      index[a.value] = i;
    std::vector<size_t> parent(assigned.size());
    for (size_t i = 0; i < parent.size(); ++i)
      parent[i] = i;
    auto find = [&](size_t i) {
      while (parent[i] != i)
        i = parent[i] = parent[parent[i]];
      return i;
    };
    program.walk([&](p::ReshapeOp reshape) {
      auto r = index.find(reshape.getResult()), x = index.find(reshape.getInput());
      if (r == index.end() || x == index.end())
        return;
      const Assigned &a = assigned[r->second], &b = assigned[x->second];
      if (a.region == b.region && a.offset == b.offset && a.size == b.size)
        parent[find(r->second)] = find(x->second);
    });
    // One entry per class: its earliest-defined member, live for the hull of its members.
    std::vector<Assigned> classes;
    DenseMap<size_t, size_t> classOf; // root index -> entry
    for (size_t i = 0; i < assigned.size(); ++i) {
      auto [it, inserted] = classOf.try_emplace(find(i), classes.size());
      if (inserted) {
        classes.push_back(assigned[i]);
        continue;
      }
      Assigned &c = classes[it->second];
      if (assigned[i].live.start < c.live.start)
        c.value = assigned[i].value;
      c.live = c.live.hull(assigned[i].live);
      ++c.views;
    }

    // Parameters alias their master copies (two reads of one parameter share a slot); in every
    // other region, buffers live at the same time must not share a byte.
    std::vector<const Assigned *> order;
    for (const Assigned &a : classes)
      if (a.region != Params)
        order.push_back(&a);
    std::stable_sort(order.begin(), order.end(), [](const Assigned *a, const Assigned *b) {
      return a->live.start < b->live.start;
    });
    std::vector<const Assigned *> active; // started earlier and still live
    for (const Assigned *next : order) {
      const Assigned &a = *next;
      llvm::erase_if(active, [&](const Assigned *b) { return b->live.end < a.live.start; });
      active.push_back(next);
      for (const Assigned *other : llvm::ArrayRef(active).drop_back()) {
        const Assigned &b = *other;
        if (b.region != a.region || !b.live.overlaps(a.live) || a.offset >= b.offset + b.size ||
            b.offset >= a.offset + a.size)
          continue;
        auto [aOp, aValue] = owner(a.value);
        auto [bOp, bValue] = owner(b.value);
        std::string aName = named(aValue, a.views), bName = named(bValue, b.views);
        InFlightDiagnostic d = aOp->emitOpError()
                               << aName << ": " << regionName(a.region) << " buffer "
                               << range(a.offset, a.size) << " overlaps " << bName << " of '"
                               << bOp->getName() << "' " << range(b.offset, b.size)
                               << " while both are live (positions " << a.live.start << "-"
                               << a.live.end << " and " << b.live.start << "-" << b.live.end
                               << ")";
        d.attachNote(bOp->getLoc()) << "the other buffer is defined here";
        ok = false;
        break; // one report per buffer
      }
    }
    if (!ok)
      return failure();
    program->setAttr(kVerifiedAttr, UnitAttr::get(program.getContext()));
    return success();
  }
};
} // namespace
