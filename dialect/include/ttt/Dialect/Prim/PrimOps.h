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
