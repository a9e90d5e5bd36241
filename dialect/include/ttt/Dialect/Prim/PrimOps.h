// The tttp dialect: static-shaped tensor primitives of the compiled programs (docs/primitives.md).
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "ttt/Dialect/Prim/PrimDialect.h.inc"
#include "ttt/Dialect/Prim/PrimInterfaces.h.inc"

#define GET_OP_CLASSES
#include "ttt/Dialect/Prim/PrimOps.h.inc"

namespace ttt::prim {
/// Floats per (mini-batch, sequence, head) of tttp.inner_loop_fwd's cache result: 3 b f + b^2 +
/// 6 b (the GPU kernels' record; runtime/backend/cuda/Kernels.h, innerLoopCacheFloats).
inline int64_t innerLoopCacheFloats(int64_t miniBatch, int64_t headDim) {
  return 3 * miniBatch * headDim + miniBatch * miniBatch + 6 * miniBatch;
}
} // namespace ttt::prim
