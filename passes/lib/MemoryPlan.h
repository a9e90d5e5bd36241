// What ttt-plan-memory and ttt-verify-memory share: the regions, the attribute names, tensor
// byte sizes and the liveness intervals of a program's values (Passes.td describes the rules).
#pragma once

#include "ttt/Dialect/Prim/PrimOps.h"

#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>

namespace ttt::memory {
// Region indices as they appear in `tttp.buffers` and in the plan's memory map (plan.fbs).
enum Region : int64_t { Params = 0, Grads = 1, Moments = 2, Checkpoints = 3, Arena = 4 };
constexpr int64_t kNumRegions = 5;
constexpr int64_t kAlignment = 256;
llvm::StringRef regionName(int64_t region);

constexpr llvm::StringLiteral kBuffersAttr = "tttp.buffers";        // on ops: one per result
constexpr llvm::StringLiteral kArgBuffersAttr = "tttp.arg_buffers"; // on scans: one per body arg
constexpr llvm::StringLiteral kSummaryAttr = "tttp.memory";         // on programs
constexpr llvm::StringLiteral kVerifiedAttr = "tttp.memory_verified";
constexpr llvm::StringLiteral kStoreBf16Attr = "tttp.store_bf16"; // ttt-store-bf16

inline int64_t alignUp(int64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

// Bytes of a static tensor (f32/i32 4, f64 8, bf16/f16 2); nullopt for other element types.
std::optional<int64_t> tensorBytes(mlir::Type type);
// Bytes of a value's buffer: its type's, or 2 per element for an f32 result of an op marked
// `tttp.store_bf16`.
std::optional<int64_t> valueBytes(mlir::Value v);

// The buffer `[region, offset, size]` recorded for `v` (its op's `tttp.buffers`, or its scan's
// `tttp.arg_buffers` for a body argument); nullopt when there is none or it is malformed.
std::optional<std::array<int64_t, 3>> recordedBuffer(mlir::Value v);

// Is `op` a `tttp.reshape` whose recorded result buffer is exactly its operand's? Such a
// reshape is a view (the runtime launches nothing for it); the planner makes every reshape one
// unless the two values must live in different slots (Passes.td).
bool isAliasingReshape(mlir::Operation *op);

// Closed interval of program positions [start, end] during which a value's buffer holds data.
struct Interval {
  int64_t start = 0, end = 0;
  bool overlaps(const Interval &o) const { return start <= o.end && o.start <= end; }
  // The smallest interval holding both (the lifetime of a buffer two values share).
  Interval hull(const Interval &o) const {
    return {std::min(start, o.start), std::max(end, o.end)};
  }
};

// Liveness of every value of a program. Ops are numbered in a pre-order walk (a scan, then its
// body); a scan spans [its position, the position of the last op nested in it].
//  - A value is live from its definition to the end of its last use; a use inside a nested
//    scan counts as a use by that scan, i.e. until the scan ends.
//  - Block arguments and values defined in a scan body are live for the whole scan (the body
//    runs many times; conservative).
//  - Program inputs are live from position 0 (the runtime fills them before the first op);
//    values read by tttp.output are live until the end of the program.
struct ProgramLiveness {
  explicit ProgramLiveness(prim::ProgramOp program);
  llvm::SmallVector<mlir::Value> values; // definition order: results, then a scan's body args
  llvm::DenseMap<mlir::Value, Interval> intervals;
  int64_t numPositions = 0;
};
} // namespace ttt::memory
