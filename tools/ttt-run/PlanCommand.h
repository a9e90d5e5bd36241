// The plan-taking form of ttt-run: `ttt-run PLAN [--dump [--json]] [training flags]`. Its options
// live on the top-level app (a plan is the default "command"), so they are added there.
#pragma once

#include "runtime/train/Trainer.h"

#include <string>

namespace CLI {
class App;
}

namespace ttt::run {
struct PlanOptions {
  std::string plan;
  bool dump = false;
  bool json = false;
  // Reserved so the grammar is settled; each says which issue brings it.
  bool dryRun = false;
  bool eval = false;
  int64_t benchmark = 0;   // --benchmark N: timed micro-steps
  bool profile = false;    // --profile
  std::string profileJson; // --profile-json FILE
  // --loss BATCH: the loss of the weights (--weights, else the init program with --seed) on a
  // token batch file, on the CPU backend.
  std::string lossBatch;
  std::string weights;
  std::string saveWeights;
  std::string saveGrads;
  std::string initFrom;
  int64_t seed = -1;
  // Training (the default action).
  train::TrainOptions train;
};

void addPlanOptions(CLI::App &app, PlanOptions &opts);

// Loads and checks the plan (before anything touches a device), then dumps it, evaluates a loss,
// or trains. Returns the exit code.
int runPlan(const PlanOptions &opts);
} // namespace ttt::run
