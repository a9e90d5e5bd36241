#include "tools/ttt-run/PlanCommand.h"

#include "tools/ttt-run/Command.h"
#include "tools/ttt-run/PlanDump.h"
#include "runtime/exec/Evaluate.h"
#include "ttt/schema/plan_generated.h"

#include <CLI/CLI.hpp>

#include <iostream>

namespace ttt::run {
void addPlanOptions(CLI::App &app, PlanOptions &opts) {
  app.add_option("PLAN", opts.plan, "Plan file written by tttc (train.bin)");
  CLI::Option *dump = app.add_flag("--dump", opts.dump,
                                   "Print the whole plan: header, provenance, model config, recipe, "
                                   "compiled shapes, parameter table");
  app.add_flag("--json", opts.json, "With --dump: print it as one JSON document")->needs(dump);
  CLI::Option *dry = app.add_flag("--dry-run", opts.dryRun,
                                  "Print batch math, tokens, steps and the device memory the plan "
                                  "needs, without training");
  CLI::Option *eval = app.add_flag("--eval", opts.eval,
                                   "Validation loss and perplexity (of --weights, --init-from or "
                                   "--resume-from-checkpoint's weights) over --eval-tokens tokens");
  CLI::Option *bench = app.add_option("--benchmark", opts.benchmark,
                                      "Time N micro-steps and the optimizer step on --backend cuda "
                                      "(random tokens): step time, tokens/s, MFU, memory");
  CLI::Option *prof = app.add_flag("--profile", opts.profile,
                                   "Time every kernel of one micro-step on --backend cuda (CUDA "
                                   "events, eager launches; NVTX ranges per layer)");
  app.add_option("--profile-json", opts.profileJson, "With --profile: also write the rows as JSON")
      ->needs(prof);
  app.add_flag("!--no-graph", opts.train.cudaGraphs,
               "CUDA backend: launch every kernel eagerly instead of replaying CUDA graphs");
  app.add_option("--max-minutes", opts.train.maxMinutes,
                 "Stop once this many minutes have passed (after the step in flight, saving "
                 "checkpoint-N and exiting 0, as SIGTERM does): a scheduler's time limit minus a "
                 "step and a checkpoint write; 0: none")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--step-timeout", opts.train.stepTimeout,
                 "Several ranks: stop this rank with an error when one training step takes longer "
                 "than this many seconds (a hung or dead rank; MPI and NCCL wait forever); 0: off")
      ->default_val(1800)
      ->check(CLI::NonNegativeNumber);
  app.add_flag("!--no-overlap", opts.train.overlapReduction,
               "CUDA backend, several ranks: average the gradients after the micro-steps instead "
               "of per bucket during the last micro-step's backward");
  app.add_option("--comm-timeline", opts.train.commTimeline,
                 "CUDA backend, several ranks (or torchrun): write the second step's gradient "
                 "reduction timeline to FILE as a Chrome trace (chrome://tracing, "
                 "ui.perfetto.dev): the backward, each bucket's reduction on the NCCL stream, and "
                 "how much of it the backward hid (eager launches; rank 0; with one torchrun "
                 "rank the per-bucket path runs just for this)");
  CLI::Option *loss = app.add_option(
      "--loss", opts.lossBatch,
      "Print the loss of the weights on a token batch file (one sequence of seq_len+1 ids per "
      "line), computed by the plan's eval_step on --backend (cpu by default)");
  app.add_option("--weights", opts.weights,
                 "Hugging Face safetensors to start from (default: the init program with --seed)");
  app.add_option("--seed", opts.seed,
                 "Initialization and data-order seed (default: the recipe's)");
  app.add_option("--save-weights", opts.saveWeights,
                 "With --loss: write the weights used as Hugging Face safetensors")
      ->needs(loss);
  app.add_option("--save-grads", opts.saveGrads,
                 "With --loss: run micro_step and write every parameter's gradient of the loss "
                 "as Hugging Face safetensors")
      ->needs(loss);
  // Training flags (the plan's recipe is the default of each).
  train::TrainOptions &t = opts.train;
  app.add_option("--data", t.data, "sample (embedded) | c4 | a folder of C4-format shards | an https URL")
      ->default_str("sample");
  app.add_option("--tokenizer", t.tokenizer, "Llama-2 tokenizer.model (default: HF cache, then the set-up copy)");
  app.add_option("--backend", t.backend, "cpu | cuda")->default_str("cpu");
  app.add_option("--max-train-steps,--max_train_steps", t.maxSteps, "optimizer steps (default: the recipe's)");
  app.add_option("--learning-rate,--learning_rate", t.lr, "peak learning rate");
  app.add_option("--lr-end,--lr_end", t.lrEnd, "final learning rate of the cosine decay");
  app.add_option("--lr-warmup-steps,--lr_warmup_steps", t.warmupSteps, "linear warmup steps");
  app.add_option("--weight-decay,--weight_decay", t.weightDecay, "AdamW weight decay");
  app.add_option("--gradient-accumulation-steps,--gradient_accumulation_steps", t.gradAccumulation,
                 "micro-batches per optimizer step (default: global batch / (per-device batch x ranks))");
  app.add_option("--output-dir,--output_dir", t.outputDir, "where logs and the final model go");
  app.add_option("--data-threads", t.threads, "tokenizer workers of the data pipeline (0: all cores)");
  app.add_option("--per-device-train-batch-size,--per_device_train_batch_size", t.perDeviceBatch,
                 "must match the plan (tttc --per-device-batch)");
  app.add_option("--seq-length,--seq_length", t.seqLength, "must match the plan (tttc --seq-len)");
  app.add_option("--mixed-precision,--mixed_precision", t.mixedPrecision,
                 "bf16|fp32 (fp64 on cpu); must match the plan (tttc --precision)");
  app.add_option("--state-passing,--state_passing", t.statePassing,
                 "true|false; must match the plan (tttc --state-passing compiles it in)");
  app.add_option("--eval-every,--eval_every", t.evalEvery, "validation every N steps (0: never)");
  app.add_option("--eval-tokens,--eval_tokens", t.evalTokens,
                 "validation tokens per evaluation (default 1048576)");
  app.add_option("--resume-from-checkpoint,--resume_from_checkpoint", t.resumeFrom,
                 "continue a run exactly from OUT/checkpoint-N (weights, AdamW state, step, data cursor)");
  app.add_option("--init-from,--init_from", opts.initFrom,
                 "start a new run from the weights of a Hugging Face-format checkpoint directory");
  app.add_option("--save-every,--save_every,--checkpoint-every", t.saveEvery,
                 "write OUT/checkpoint-N every N steps (default: the recipe's, 1000)");
  app.add_option("--milestone-every,--milestone_every", t.milestoneEvery,
                 "write OUT/milestone-N every N steps, never deleted (default: the recipe's, 2000)");
  app.add_option("--keep-checkpoints,--save-total-limit,--save_total_limit", t.keepCheckpoints,
                 "newest checkpoint-N directories kept (default 3)");
  app.add_option("--zero", t.zero,
                 "with several ranks: 1 (default) shards the AdamW moments over them (ZeRO-1), "
                 "0 keeps a full copy on every rank");
  app.add_option("--ranks", t.ranks,
                 "with --dry-run or --dump: the memory (and batch math) of one device of a job "
                 "of N ranks (default: the launch's)");
  for (CLI::Option *mode : {dry, eval, bench, loss, prof})
    mode->excludes(dump);
  loss->excludes(dry)->excludes(eval)->excludes(bench)->excludes(prof);
  dry->excludes(eval)->excludes(bench)->excludes(prof);
  eval->excludes(bench)->excludes(prof);
  bench->excludes(prof);
}

int runPlan(const PlanOptions &opts) {
  // Every check of the plan happens here, before any device is touched.
  ttt::plan::PlanFile file;
  std::string error;
  if (!file.load(opts.plan, error))
    return reportError(error);

  if (opts.train.ranks && !opts.dump && !opts.dryRun)
    return reportError("--ranks only applies to --dry-run and --dump; a run takes its ranks from "
                       "the launcher (mpirun -np N, srun, torchrun)");
  if (opts.dump) {
    const int ranks = opts.train.ranks.value_or(1);
    if (ranks < 1)
      return reportError("--ranks " + std::to_string(ranks) + ": at least 1");
    if (opts.json)
      std::cout << planToJson(file, opts.plan, ranks).dump(2) << "\n";
    else
      std::cout << formatPlanText(file, opts.plan, ranks);
    return kExitOk;
  }
  if (!opts.lossBatch.empty()) {
    exec::EvalOptions eval;
    eval.weights = opts.weights;
    eval.saveWeights = opts.saveWeights;
    eval.saveGrads = opts.saveGrads;
    eval.backend = opts.train.backend;
    if (opts.seed >= 0)
      eval.seed = uint64_t(opts.seed);
    exec::EvalResult result;
    if (std::string err = exec::evaluateLoss(*file.plan(), opts.lossBatch, eval, result);
        !err.empty())
      return reportError(err);
    std::cout.precision(17);
    std::cout << "{\"loss\": " << result.loss << ", \"tokens\": " << result.tokens
              << ", \"precision\": \"" << result.precision << "\", \"step_s\": "
              << result.seconds << ", \"backend\": \"" << eval.backend << "\"";
    if (result.gradNorm >= 0)
      std::cout << ", \"grad_norm\": " << result.gradNorm;
    std::cout << "}\n";
    return kExitOk;
  }
  train::TrainOptions t = opts.train;
  if (opts.benchmark > 0 || opts.profile) {
    if (opts.seed >= 0)
      t.seed = uint64_t(opts.seed);
    std::string err = opts.profile ? train::profile(*file.plan(), t, opts.profileJson, std::cout)
                                   : train::benchmark(*file.plan(), t, opts.benchmark, std::cout);
    return err.empty() ? kExitOk : reportError(err);
  }
  t.weights = opts.weights;
  if (!opts.initFrom.empty()) {
    if (!t.weights.empty())
      return reportError("--init-from and --weights both give starting weights; pass one");
    t.weights = opts.initFrom + "/model.safetensors";
  }
  if (!t.resumeFrom.empty() && !t.weights.empty())
    return reportError("--resume-from-checkpoint restores the weights itself; drop --weights/--init-from");
  if (opts.seed >= 0)
    t.seed = uint64_t(opts.seed);
  std::string err = opts.dryRun ? train::dryRun(*file.plan(), t, std::cout)
                    : opts.eval ? train::evaluate(*file.plan(), t, std::cout)
                                : train::train(*file.plan(), t, std::cout);
  if (!err.empty())
    return reportError(err);
  return kExitOk;
}
} // namespace ttt::run
