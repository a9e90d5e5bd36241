// Typed attributes of the ttt dialect: model configuration, training recipe, enums.
#pragma once

#include "mlir/IR/Attributes.h"
#include "mlir/IR/DialectImplementation.h"

namespace ttt {
/// A double stored in an attribute (llvm::hash_value has no double overload).
struct F64 {
  double value = 0;
  F64(double v = 0) : value(v) {}
  operator double() const { return value; }
  bool operator==(const F64 &other) const { return value == other.value; }
};
inline llvm::hash_code hash_value(F64 f) { return llvm::hash_value(llvm::bit_cast<uint64_t>(f.value)); }
} // namespace ttt

namespace ttt::detail {
mlir::FailureOr<F64> parseF64(mlir::AsmParser &parser);
void printF64(mlir::AsmPrinter &printer, double value);
/// Shortest text that reads back as the same double, always lexed as a float by MLIR.
std::string formatF64(double value);
mlir::FailureOr<bool> parseBool(mlir::AsmParser &parser);
} // namespace ttt::detail

#include "ttt/Dialect/TTT/TTTEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "ttt/Dialect/TTT/TTTAttrs.h.inc"
