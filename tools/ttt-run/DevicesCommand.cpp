// `ttt-run devices [--json]`: the CUDA GPUs this process can see. Touches no plan.
#include "tools/ttt-run/Command.h"
#include "tools/ttt-run/PlanDump.h"

#include "runtime/backend/Devices.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace ttt::run {
namespace {
struct DevicesOptions {
  bool json = false;
};

int runDevices(const DevicesOptions &opts) {
  std::vector<backend::GpuInfo> gpus;
  std::string driver, error;
  if (!backend::queryCudaDevices(gpus, driver, error))
    return reportError(error);
  if (opts.json) {
    nlohmann::ordered_json j;
    j["cuda_build"] = backend::cudaBuildVersion();
    j["driver_cuda"] = driver;
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const backend::GpuInfo &g : gpus)
      list.push_back({{"index", g.index},
                      {"name", g.name},
                      {"multiprocessors", g.multiprocessors},
                      {"memory_bytes", g.totalMemoryBytes},
                      {"compute_capability", std::to_string(g.computeMajor) + "." + std::to_string(g.computeMinor)},
                      {"pci_bus_id", g.pciBusId}});
    j["gpus"] = list;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << gpus.size() << (gpus.size() == 1 ? " CUDA GPU" : " CUDA GPUs") << " visible (driver supports CUDA "
            << driver << "; this build: " << backend::cudaBuildVersion() << ")\n";
  for (const backend::GpuInfo &g : gpus) {
    std::cout << "  " << g.index << "  " << g.name << "  " << g.multiprocessors << " SMs  "
              << humanBytes(g.totalMemoryBytes) << "  compute " << g.computeMajor << "." << g.computeMinor;
    if (!g.pciBusId.empty())
      std::cout << "  pci " << g.pciBusId;
    if (g.computeMajor != 9)
      std::cout << "  (this build targets sm_90)";
    std::cout << "\n";
  }
  return kExitOk;
}
} // namespace

void registerDevicesCommand(CLI::App &app, CommandSelection &selection) {
  auto opts = std::make_shared<DevicesOptions>();
  CLI::App *cmd = app.add_subcommand("devices", "List the visible CUDA GPUs (name, SMs, memory, compute capability)");
  cmd->add_flag("--json", opts->json, "Print the list as one JSON document");
  cmd->callback([opts, &selection] { selection.action = [opts] { return runDevices(*opts); }; });
}
} // namespace ttt::run
