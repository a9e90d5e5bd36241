#include "tools/ttt-run/PlanCommand.h"

#include "tools/ttt-run/Command.h"
#include "tools/ttt-run/PlanDump.h"

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
                                  "Print batch math, tokens, steps and a memory estimate without "
                                  "training (not available yet: issue 7)");
  CLI::Option *eval = app.add_flag("--eval", opts.eval,
                                   "Validation loss and perplexity of a checkpoint (not available yet: issue 7)");
  CLI::Option *bench = app.add_flag("--benchmark", opts.benchmark,
                                    "Time the training step: tokens/s, MFU, peak memory (not available yet: issue 10)");
  for (CLI::Option *mode : {dry, eval, bench})
    mode->excludes(dump);
  dry->excludes(eval)->excludes(bench);
  eval->excludes(bench);
}

int runPlan(const PlanOptions &opts) {
  // Every check of the plan happens here, before any device is touched.
  ttt::plan::PlanFile file;
  std::string error;
  if (!file.load(opts.plan, error))
    return reportError(error);

  if (opts.dump) {
    if (opts.json)
      std::cout << planToJson(file, opts.plan).dump(2) << "\n";
    else
      std::cout << formatPlanText(file, opts.plan);
    return kExitOk;
  }
  const char *reserved = opts.dryRun ? "--dry-run" : opts.eval ? "--eval" : opts.benchmark ? "--benchmark" : nullptr;
  if (reserved) {
    int issue = opts.benchmark ? 10 : 7;
    reportNote(std::string(reserved) + " is not available yet (issue " + std::to_string(issue) +
               "); inspect the plan with `ttt-run " + opts.plan + " --dump`");
    return kExitUnavailable;
  }
  std::cout << formatPlanSummary(file, opts.plan);
  reportNote("this build cannot train yet (training lands with issues 6 and 7); inspect the plan with "
             "`ttt-run " + opts.plan + " --dump`");
  return kExitUnavailable;
}
} // namespace ttt::run
