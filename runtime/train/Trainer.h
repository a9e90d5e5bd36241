// The training loop of ttt-run: data -> micro_step (accumulated over micro-batches) -> apply_step
// (clip, AdamW, warmup-cosine schedule), with logs, on the CPU or CUDA backend; the benchmark and
// profile of the CUDA step.
#pragma once

#include "ttt/schema/plan_generated.h"

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace ttt::train {
struct TrainOptions {
  std::string data = "sample"; // sample | c4 | a folder | an https URL (runtime/data), or
                               // batches:FILE: a token batch file read in order (tests)
  std::string weights;         // start from these HF safetensors instead of the init program
  std::string tokenizer;       // default: the tokenizer search of runtime/data
  std::string backend = "cpu";
  std::optional<int64_t> maxSteps;          // default: the recipe's total_steps
  std::optional<uint64_t> seed;             // default: the recipe's
  std::optional<double> lr, lrEnd;          // defaults: the recipe's
  std::optional<int64_t> warmupSteps;       // default: the recipe's
  std::optional<double> weightDecay;        // default: the recipe's
  std::optional<int64_t> gradAccumulation;  // default: global batch / (plan batch x ranks)
  std::string outputDir;                    // logs, checkpoints and the final model
  int threads = 0;                          // data pipeline workers (0: all cores)
  std::string resumeFrom;                   // a checkpoint directory: continue exactly
  std::optional<int64_t> saveEvery;         // checkpoint-N every N steps (recipe's)
  std::optional<int64_t> milestoneEvery;    // milestone-N every N steps, kept (recipe's)
  int keepCheckpoints = 3;                  // newest checkpoint-N directories kept
  std::optional<bool> statePassing;         // must match the plan (compiled in)
  std::optional<int64_t> perDeviceBatch;    // must match the plan (tttc --per-device-batch)
  std::optional<int64_t> seqLength;         // must match the plan (tttc --seq-len)
  std::string mixedPrecision;               // bf16|fp32|fp64; must match (tttc --precision)
  int64_t evalEvery = 0;                    // validation every N steps (0: never)
  int64_t evalTokens = 1 << 20;             // validation tokens per evaluation
  bool cudaGraphs = true;                   // --no-graph: run the CUDA programs eagerly
  bool overlapReduction = true;             // --no-overlap: CUDA, several ranks: average the
                                            // gradients after the micro-steps, not per bucket
  int zero = 1;                             // --zero: 1 shards the AdamW moments over the ranks
                                            // (ZeRO-1; only with more than one), 0 replicates them
  std::optional<int> ranks;                 // --ranks (--dry-run): ranks to plan for (default:
                                            // the launch's)
  double stepTimeout = 1800;                // --step-timeout: several ranks: end this rank when
                                            // a step takes longer (a hung or dead rank); 0: off
  double maxMinutes = 0;                    // --max-minutes: stop as SIGTERM does (checkpoint,
                                            // exit 0) once this much time has passed; 0: none
  std::string commTimeline;                 // --comm-timeline: CUDA, reducing per bucket: the
                                            // second step's reduction timeline (Chrome trace)
};

/// Model FLOPs per token for throughput and MFU: 6 per parameter (forward + backward of every
/// weight's matmul; the tied LM head counted once), the usual convention.
double modelFlopsPerToken(const plan::Plan &plan);

/// Device memory per rank of a plan (its memory map) on `ranks` ranks: with ZeRO-1 (zero and
/// ranks > 1) the AdamW moments of one rank's slice and the parameter and gradient regions
/// padded to equal slices, as the CUDA session lays them out (runtime/dist/Shard.h).
struct PlanMemory {
  double params = 0, grads = 0, moments = 0, fullMoments = 0, checkpoints = 0, arena = 0;
  double carried = 0; // state passing: the states of the rank's rows (global batch / ranks)
  int shards = 1;     // ranks the moments are split over
  double total() const { return params + grads + moments + checkpoints + arena + carried; }
};
/// All zeros if the plan has no memory map.
PlanMemory planMemory(const plan::Plan &plan, int ranks, bool zero);

/// Batch math, tokens, steps and the memory the plan needs, without training (--dry-run).
std::string dryRun(const plan::Plan &plan, const TrainOptions &options, std::ostream &log);

/// Validation loss and perplexity of the given weights (--weights, a checkpoint via
/// --resume-from-checkpoint's directory, or the init program) over options.evalTokens tokens of
/// the source's validation shards, with the plan's eval_step (--eval).
std::string evaluate(const plan::Plan &plan, const TrainOptions &options, std::ostream &log);

/// --benchmark N: the training step on the CUDA backend with random tokens: two warm-up
/// micro-steps, N timed ones (median) and the optimizer step; prints step time, tokens/s, MFU
/// (6 x parameters FLOPs per token over 989 TFLOP/s, and the share of the 790 TFLOP/s GEMM
/// ceiling) and memory as a table and one JSON line.
std::string benchmark(const plan::Plan &plan, const TrainOptions &options, int64_t iterations,
                      std::ostream &log);

/// --profile: one micro-step launched eagerly with CUDA events around every instruction (and NVTX
/// ranges named after the layers); prints the time per kernel and per layer; writes the rows as
/// JSON to jsonPath when given.
std::string profile(const plan::Plan &plan, const TrainOptions &options,
                    const std::string &jsonPath, std::ostream &log);

/// Trains; prints one line per step to `log`. SIGINT/SIGTERM finish the step, save a checkpoint
/// and return "". Returns "" or a one-line error.
std::string train(const plan::Plan &plan, const TrainOptions &options, std::ostream &log);
} // namespace ttt::train
