// Builds the canonical ttt.model of a TTT-Linear (Mamba backbone) language model from its
// configuration and recipe: the structure the checked-in models/*.mlir are written in.
#pragma once

#include "ttt/Dialect/TTT/TTTOps.h"

#include "mlir/IR/BuiltinOps.h"

#include <optional>
#include <string>

namespace ttt {
/// The standard recipes of spec 4.2 plus "tiny" (the CPU test model), by name: "tiny", "125m",
/// "350m", "760m", "1b". The config part is the size table of spec 1.1.
struct StandardModel {
  std::string name; // "125m"
  int64_t vocab, hidden, intermediate, layers, heads;
  int64_t totalSteps, warmupSteps, globalBatch, seqLen;
  double lr;
};
llvm::ArrayRef<StandardModel> standardModels();
const StandardModel *findStandardModel(llvm::StringRef name);

/// Recipe fields with the reference values (spec 4.1-4.2) as defaults.
struct RecipeFields {
  std::string optimizer = "adamw";
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.1, gradClip = 1.0;
  double lr = 3e-3, lrEnd = 1e-5;
  int64_t warmupSteps = 480, totalSteps = 4800, globalBatch = 256, seqLen = 2048;
  int64_t miniBatch = 16;
  double innerBaseLr = 1.0;
  int64_t rematGroup = 4;
  bool statePassing = false;
  int64_t seed = 0, checkpointEvery = 1000, milestoneEvery = 2000;

  RecipeAttr toAttr(mlir::MLIRContext *ctx) const;
};

/// Appends `ttt.model @name` to `module` (config and recipe already verified by the caller).
ModelOp buildModel(mlir::ModuleOp module, llvm::StringRef name, ConfigAttr config,
                   RecipeAttr recipe);
} // namespace ttt
