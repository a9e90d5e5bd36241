// ttt-run: the runtime's command line. Trains from a plan written by tttc, inspects plans, lists
// devices. Never links MLIR. Grammar and examples: docs/cli.md.
#include "tools/ttt-run/Command.h"
#include "tools/ttt-run/PlanCommand.h"

#include "runtime/backend/Devices.h"
#include "runtime/plan/PlanFile.h"
#include "ttt/Version.h"

#include <CLI/CLI.hpp>

#include <iostream>

namespace ttt::run {
namespace {
using RegisterCommand = void (*)(CLI::App &, CommandSelection &);

// One entry per subcommand file (see Command.h).
const RegisterCommand kSubcommands[] = {
    registerDevicesCommand,
    registerDataCommand,
    registerKernelCheckCommand,
};

std::string versionText() {
  std::string backends = "cpu";
  if (backend::cudaBackendBuilt())
    backends += ", cuda (" + backend::cudaBuildVersion() + ")";
  return std::string("ttt-run ") + TTT_VERSION_STRING + " (git " + TTT_GIT_SHA + ")\n" +
         "plan format " + std::to_string(plan::kFormatMajor) + "." + std::to_string(plan::kFormatMinor) + "\n" +
         "backends: " + backends;
}

std::string oneLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  std::string out;
  for (char c : s)
    out += c == '\n' ? std::string("; ") : std::string(1, c);
  return out;
}
} // namespace

// Each line in one write: the ranks of a job share one stderr.
int reportError(const std::string &message) {
  std::cerr << "ttt-run: error: " + oneLine(message) + "\n" << std::flush;
  return kExitError;
}

void reportNote(const std::string &message) {
  std::cerr << "ttt-run: " + oneLine(message) + "\n" << std::flush;
}
} // namespace ttt::run

int main(int argc, char **argv) {
  using namespace ttt::run;
  CLI::App app{"ttt-run: train TTT-Linear models from a plan compiled by tttc, inspect plans, list devices.\n"
               "  ttt-run PLAN [training flags]   train (not available yet: issues 6, 7)\n"
               "  ttt-run PLAN --dump [--json]    print the whole plan\n"
               "  ttt-run devices [--json]        list the visible CUDA GPUs\n"
               "  ttt-run data [--data sample]    inspect a data source (tokens, batches, tokens/s)\n"
               "  ttt-run kernel-check prepare|check DIR   every CUDA kernel against fp64 CPU references\n"
               "  ttt-run --version               version, git sha, backends\n"
               "Details: docs/cli.md",
               "ttt-run"};
  app.set_version_flag("--version", [] { return versionText(); });
  app.require_subcommand(0, 1);

  PlanOptions planOptions;
  addPlanOptions(app, planOptions);
  CommandSelection selection;
  for (RegisterCommand add : kSubcommands)
    add(app, selection);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    reportError(std::string(e.what()) + "; run `ttt-run --help` for usage");
    return kExitUnavailable;
  }

  if (!app.get_subcommands().empty()) {
    if (!planOptions.plan.empty()) {
      reportError("a plan (" + planOptions.plan + ") and the subcommand `" + app.get_subcommands().front()->get_name() +
                  "` were both given; run them separately (a plan file named like a subcommand is written ./NAME)");
      return kExitUnavailable;
    }
    return selection.action ? selection.action() : kExitOk;
  }
  if (planOptions.plan.empty()) {
    reportError("no plan given; usage: `ttt-run PLAN [--dump [--json]]`, `ttt-run devices` or `ttt-run --help` "
                "(compile a plan with `tttc MODEL.mlir -o train.bin`)");
    return kExitUnavailable;
  }
  return runPlan(planOptions);
}
