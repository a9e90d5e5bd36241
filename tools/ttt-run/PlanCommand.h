// The plan-taking form of ttt-run: `ttt-run PLAN [--dump [--json]] [training flags]`. Its options
// live on the top-level app (a plan is the default "command"), so they are added there.
#pragma once

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
  bool benchmark = false;
};

void addPlanOptions(CLI::App &app, PlanOptions &opts);

// Loads and checks the plan (before anything touches a device), then dumps it, or prints the
// summary and says this build cannot train yet. Returns the exit code.
int runPlan(const PlanOptions &opts);
} // namespace ttt::run
