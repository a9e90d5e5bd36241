// Compiler passes over the ttt dialect, and the pass registration used by ttt-opt and tttc.
#pragma once

#include "mlir/Pass/Pass.h"
#include "ttt/Dialect/Prim/PrimOps.h"
#include "ttt/Dialect/TTT/TTTOps.h"
#include "mlir/IR/BuiltinOps.h"

namespace ttt {
#define GEN_PASS_DECL
#include "ttt/Passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "ttt/Passes/Passes.h.inc"
} // namespace ttt
