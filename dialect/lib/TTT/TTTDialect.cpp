#include "ttt/Dialect/TTT/TTTOps.h"

using namespace mlir;
using namespace ttt;

#include "ttt/Dialect/TTT/TTTDialect.cpp.inc"

void TTTDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "ttt/Dialect/TTT/TTTOps.cpp.inc"
      >();
  registerAttributes();
}
