// The ttt dialect: TTT-Linear models and their training recipe at layer granularity.
#pragma once

#include "mlir/IR/Dialect.h"

#include "ttt/Dialect/TTT/TTTDialect.h.inc"
