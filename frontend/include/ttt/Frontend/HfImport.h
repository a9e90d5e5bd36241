// Imports a Hugging Face `config.json` of the reference TTT model (model_type "ttt", spec 5.1)
// into an equivalent ttt.model, with the training recipe from a standard preset and flags.
#pragma once

#include "ttt/Frontend/ModelBuilder.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <optional>

namespace ttt {
struct HfImportOptions {
  std::string modelName;            // default: ttt_<preset> or ttt_model
  std::string preset;               // standard recipe name; default: matched by size
  std::optional<double> lr, lrEnd;
  std::optional<int64_t> warmupSteps, totalSteps, globalBatch, seqLen, rematGroup, seed;
  std::optional<bool> statePassing;
};

/// Returns the module, or null after setting `error` to a one-line message.
mlir::OwningOpRef<mlir::ModuleOp> importHfConfig(mlir::MLIRContext *ctx,
                                                 llvm::StringRef jsonText,
                                                 llvm::StringRef sourceName,
                                                 const HfImportOptions &options,
                                                 std::string &error);
} // namespace ttt
