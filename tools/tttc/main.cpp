// tttc: compiles a ttt model (.mlir) into a training plan for ttt-run; imports Hugging Face
// configs. Command-line parsing only; the work is in Driver.cpp.
#include "Driver.h"

#include <CLI/CLI.hpp>

#include <cstdlib>

#include <iostream>

int main(int argc, char **argv) {
  using namespace ttt::driver;
  CLI::App app{"tttc: compile a TTT-Linear model and its training recipe into a plan for ttt-run\n"
               "\n"
               "  tttc models/ttt_125m.mlir -o train.bin                compile for the GPU (bf16)\n"
               "  tttc models/ttt_tiny.mlir --target cpu -o tiny.bin    compile for the CPU backend\n"
               "  tttc models/ttt_125m.mlir --summary                   parameter counts by kind\n"
               "  tttc import-hf config.json -o model.mlir              Hugging Face config -> model\n",
               "tttc"};
  app.set_version_flag("--version", versionString());
  app.require_subcommand(0, 1);

  CompileOptions c;
  app.add_option("input", c.input, "model file (.mlir), '-' for stdin");
  app.add_option("-o,--output", c.output,
                 "output: the plan (train.bin), or IR for --compile-to=model ('-' = stdout)");
  std::string phases;
  for (const std::string &p : phaseNames())
    phases += (phases.empty() ? "" : "|") + p;
  app.add_option("--compile-to", c.compileTo, "stop after this phase: " + phases)
      ->default_str("plan");
  app.add_option("--per-device-batch", c.perDeviceBatch,
                 "sequences per device per micro-step (default: 16, or the global batch if "
                 "smaller); must divide the recipe's global batch");
  app.add_option("--seq-len", c.seqLen, "sequence length (default: the recipe's)");
  app.add_option("--precision", c.precision,
                 "bf16 | fp32 | fp64 (default: bf16 for sm_90, fp32 for cpu; fp64: cpu only)");
  app.add_option("--target", c.target, "cpu | sm_90")->default_str("sm_90");
  app.add_flag("--summary", c.summary, "print the model, recipe and parameter counts by kind");
  app.add_option("--state-passing", c.statePassing,
                 "true|false: carry each row's inner states across steps (overrides the recipe)");
  app.add_flag("--no-fuse-inner-loop{false}", c.fuseInnerLoop,
               "keep the inner loop as scans (no tttp.inner_loop_fwd/bwd)");
  app.add_flag("--no-inner-loop-cache{false}", c.innerLoopCache,
               "bf16 plans: recompute the inner loop's steps in its backward instead of keeping "
               "them from the forward (less memory, a slower backward)");
  app.add_flag("--no-fuse-elementwise{false}", c.fuseElementwise,
               "keep elementwise chains and the lm_head + cross-entropy unfused");
  app.add_flag("--no-bf16-storage{false}", c.storeBf16,
               "bf16 plans: keep values that only matmuls read in fp32 (cast before each "
               "matmul) instead of storing them as bf16; the same results, more bytes");
  app.add_option("--bucket-mb", c.bucketMb,
                 "megabytes of gradients per reduction point (bucket_ready) of micro_step, where "
                 "several ranks start averaging them (default 25)")
      ->check([](const std::string &v) {
        return std::strtod(v.c_str(), nullptr) > 0 ? std::string()
                                                   : "must be a positive number of megabytes";
      });

  ImportOptions im;
  CLI::App *imp = app.add_subcommand(
      "import-hf", "write the ttt model equivalent to a Hugging Face config.json (model_type "
                   "\"ttt\") with a training recipe");
  imp->add_option("config", im.config, "config.json")->required();
  imp->add_option("-o,--output", im.output, "output .mlir ('-' = stdout)")->default_str("-");
  imp->add_option("--name", im.modelName, "model symbol (default ttt_<recipe>)");
  imp->add_option("--recipe", im.preset,
                  "standard recipe: tiny|125m|350m|760m|1b (default: matched by the sizes)");
  imp->add_option("--lr", im.lr, "peak learning rate");
  imp->add_option("--lr-end", im.lrEnd, "final learning rate of the cosine decay");
  imp->add_option("--warmup-steps", im.warmupSteps, "linear warmup steps (default 10%)");
  imp->add_option("--total-steps", im.totalSteps, "optimizer steps");
  imp->add_option("--global-batch", im.globalBatch, "sequences per optimizer step");
  imp->add_option("--seq-len", im.seqLen, "sequence length");
  imp->add_option("--remat-group", im.rematGroup, "mini-batches per rematerialisation group");
  imp->add_option("--seed", im.seed, "initialization and data-order seed");
  imp->add_option("--state-passing", im.statePassing, "carry inner states across steps (true|false)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e);
  }
  if (imp->parsed())
    return importHf(im);
  if (c.input.empty()) {
    std::cerr << "tttc: error: no input model; try `tttc models/ttt_tiny.mlir --summary` or --help\n";
    return 1;
  }
  return compile(c);
}
