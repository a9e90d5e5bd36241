// The loss of given weights on a given token batch: initializes (the plan's init program) or
// loads (Hugging Face safetensors) the weights, reads a batch file, runs eval_step on the CPU
// backend. Used by `ttt-run PLAN --loss BATCH` and by the oracle test.
#pragma once

#include "runtime/exec/Interpreter.h"

#include <cstdint>
#include <optional>
#include <string>

namespace ttt::exec {
/// Inputs of eval_step from a token batch file: '#' lines are comments; every other non-empty
/// line is one sequence of seq_len + 1 token ids separated by spaces (inputs = first seq_len,
/// targets = last seq_len); exactly `batch` sequences (any number if batch < 0). "" or one line
/// naming file:line.
std::string readBatchFile(const std::string &path, int64_t batch, int64_t seqLen, NamedInts &out);

struct EvalOptions {
  std::string weights;       // safetensors with HF names; empty: run the init program
  std::optional<uint64_t> seed; // init seed; default: the recipe's
  std::string saveWeights;   // write the weights used (HF safetensors) here, if set
  std::string saveGrads;     // run micro_step instead and write every parameter's gradient of
                             // the loss (HF names and layouts) here, if set
  std::string backend = "cpu"; // "cpu" or "cuda" (fp32 plans)
};

struct EvalResult {
  double loss = 0;
  int64_t tokens = 0;        // targets that count (not masked)
  std::string precision;     // "fp32" or "fp64"
  double seconds = 0;        // wall time of the program alone (eval_step or micro_step)
  double gradNorm = -1;      // with saveGrads: the global L2 norm of every gradient
};

/// "" or one line.
std::string evaluateLoss(const plan::Plan &plan, const std::string &batchFile,
                         const EvalOptions &options, EvalResult &result);
} // namespace ttt::exec
