// Training checkpoints: a directory per checkpoint, written atomically (a hidden temp directory,
// every file fsynced, then renamed into place), so a crash or `kill -9` during a save leaves the
// previous checkpoints intact. Layout (docs/checkpoints.md):
//
//   model.safetensors      weights, Hugging Face names and layouts (tied lm_head left out)
//   config.json            the Hugging Face TTTConfig of the model (model_type "ttt")
//   tokenizer.model        the tokenizer the run used
//   optimizer.safetensors  AdamW moments "m.<param>", "v.<param>" in the master precision
//   trainer_state.json     step, scheduler count, data cursor, training arguments
//   streams.safetensors    state passing only: every row stream's carried inner states and conv
//                          histories, one tensor per state, [global batch, ...] in global row
//                          order (so a run resumes on any number of ranks)
#pragma once

#include "runtime/exec/Interpreter.h"
#include "runtime/exec/Weights.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ttt::train {
template <typename T> struct TrainState {
  exec::Weights<T> params, m, v; // plan order, our layout
  // State passing: every row stream's carried states in global row order ("state:<name>" ->
  // global batch x the state's per-row size), as streams.safetensors holds them. The trainer
  // splits them over the ranks and micro-batch slots and gathers them back before a save.
  exec::NamedTensors<T> streams;
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

/// Reads a checkpoint written by saveCheckpoint for this plan (the carried states too when
/// `streams` is set and the plan passes states). "" or one line.
template <typename T>
std::string loadCheckpoint(const plan::Plan &plan, const std::string &dir, TrainState<T> &state,
                           bool streams = true);

/// The per-row shape of each state the plan's micro_step carries ("state:<name>" -> the dims
/// after the batch dimension), without the reset flag. Empty without state passing.
std::map<std::string, std::vector<int64_t>> carriedStateShapes(const plan::Plan &plan);

/// Keeps the `keep` newest `checkpoint-<step>` directories of `outputDir` (milestones untouched).
void pruneCheckpoints(const std::string &outputDir, int keep);
} // namespace ttt::train
