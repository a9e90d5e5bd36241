// Operations of the ttt dialect (see TTTOps.td for their documentation).
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "ttt/Dialect/TTT/TTTAttrs.h"
#include "ttt/Dialect/TTT/TTTDialect.h"

#define GET_OP_CLASSES
#include "ttt/Dialect/TTT/TTTOps.h.inc"
