// ttt-opt: the mlir-opt of this project, for compiler regression tests (lit). Only the ttt
// dialect and the project's passes are registered.
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "ttt/Dialect/Prim/PrimOps.h"
#include "ttt/Dialect/TTT/TTTOps.h"
#include "ttt/Passes/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<ttt::TTTDialect, ttt::prim::PrimDialect>();
  ttt::registerTTTPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "ttt optimizer driver\n", registry));
}
