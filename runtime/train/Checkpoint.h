// Training checkpoints: a directory per checkpoint, written atomically (a hidden temp directory,
// every file fsynced, then renamed into place), so a crash or `kill -9` during a save leaves the
// previous checkpoints intact. Layout (docs/checkpoints.md):
//
//   model.safetensors      weights, Hugging Face names and layouts (tied lm_head left out)
//   config.json            the Hugging Face TTTConfig of the model (model_type "ttt")
//   tokenizer.model        the tokenizer the run used
//   optimizer.safetensors  AdamW moments "m.<param>", "v.<param>" in the master precision
//   trainer_state.json     step, scheduler count, data cursor, training arguments
//   streams.safetensors    state passing only: each micro-batch slot's carried inner states
#pragma once

#include "runtime/exec/Interpreter.h"
#include "runtime/exec/Weights.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ttt::train {
template <typename T> struct TrainState {
  exec::Weights<T> params, m, v; // plan order, our layout
  // State passing: per micro-batch slot, the carried states ("state:<name>" -> values).
  std::vector<exec::NamedTensors<T>> streams;
  int64_t step = 0;              // optimizer steps done
  std::string dataCursor;        // runtime/data Cursor::serialize(), or "batches:<step>"
  nlohmann::json args;           // the training arguments (flags and the recipe they resolved to)
};

/// The Hugging Face config.json of the plan's model (spec 5.1).
nlohmann::json hfConfig(const plan::Plan &plan);

/// Writes `dir` atomically. "" or one line naming the file that failed.
template <typename T>
std::string saveCheckpoint(const plan::Plan &plan, const TrainState<T> &state,
                           const std::string &tokenizerPath, const std::string &dir);

/// Reads a checkpoint written by saveCheckpoint for this plan. "" or one line.
template <typename T>
std::string loadCheckpoint(const plan::Plan &plan, const std::string &dir, TrainState<T> &state);

/// Keeps the `keep` newest `checkpoint-<step>` directories of `outputDir` (milestones untouched).
void pruneCheckpoints(const std::string &outputDir, int keep);
} // namespace ttt::train
