// The tttc driver: everything tttc does, behind plain C++ types so that main.cpp (CLI11) never
// sees MLIR or LLVM headers and their flags.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ttt::driver {
/// The named compilation phases (`--compile-to`), in order.
const std::vector<std::string> &phaseNames();

struct CompileOptions {
  std::string input;               // .mlir file, "-" for stdin
  std::string output;              // plan (or IR for --compile-to before "plan"); "-" = stdout
  std::string compileTo = "plan";
  int64_t perDeviceBatch = 0;      // 0: the default (16, or the global batch if smaller)
  int64_t seqLen = 0;              // 0: the recipe's
  std::string precision;          // bf16 | fp32 | fp64; "" = fp32 on cpu, bf16 on sm_90
  std::string target = "sm_90";    // cpu | sm_90
  bool summary = false;            // print the parameter summary
  std::optional<bool> statePassing; // overrides the recipe's state_passing
  bool fuseInnerLoop = true;       // ttt-fuse-inner-loop for plans (--no-fuse-inner-loop: off)
  bool innerLoopCache = true;      // bf16 sm_90 plans: the inner-loop cache (--no-inner-loop-cache)
  bool fuseElementwise = true;     // ttt-fuse-elementwise (--no-fuse-elementwise: off)
  bool storeBf16 = true;           // ttt-store-bf16 in bf16 plans (--no-bf16-storage: off)
  double bucketMb = 25.0;          // gradient bucket size of the reduction points (--bucket-mb)
};
int compile(const CompileOptions &options);

struct ImportOptions {
  std::string config;              // Hugging Face config.json
  std::string output = "-";
  std::string modelName, preset;
  std::optional<double> lr, lrEnd;
  std::optional<int64_t> warmupSteps, totalSteps, globalBatch, seqLen, rematGroup, seed;
  std::optional<bool> statePassing;
};
int importHf(const ImportOptions &options);

/// "tttc 0.1.0 (git <sha>), MLIR/LLVM 19.1.x, plan format 1.0"
std::string versionString();
} // namespace ttt::driver
