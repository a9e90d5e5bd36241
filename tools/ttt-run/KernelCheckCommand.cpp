// `ttt-run kernel-check`: every CUDA kernel launcher (runtime/backend/cuda/Kernels.h) against fp64
// references computed by the CPU backend, the parity check of the GPU machine.
//
//   ttt-run kernel-check prepare DIR [--seed N]
//       Any build, on the build machine: draws fresh random inputs for every case (seeded), runs
//       the CPU kernels in double on the fp32 values the GPU will get, and writes the inputs and
//       references to DIR (index.json + cases/*.bin, about 20 MB). Prints the cases.
//   ttt-run kernel-check check DIR [--json FILE] [--filter TEXT] [--device cuda|cpu]
//       A CUDA build, on the GPU machine: runs every case twice on GPU 0, compares each output
//       with its reference, ||gpu - ref|| / ||ref|| (absolute when ||ref|| = 0), fails on NaN/Inf,
//       on an error above the mode's tolerance (fp32 1e-5, bf16 1e-2) or when the two runs differ
//       in a bit; prints one line per case and a summary; exit 1 on any failure. A build without
//       CUDA says so and exits 2. `--device cpu` runs the CPU backend in fp32 instead (a check
//       of the checker, no GPU needed); --filter keeps the cases whose name contains TEXT.
//
// The work is runtime/exec/KernelCheck.h; docs/cli.md has the section.
#include "tools/ttt-run/Command.h"

#include "runtime/exec/KernelCheck.h"
#include "ttt/Version.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

namespace ttt::run {
namespace {
struct KernelCheckOptions {
  std::string dir;
  uint64_t seed = 1;
  std::string json, filter, device = "cuda";
};

std::string megabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", double(bytes) / 1e6);
  return buf;
}

int runPrepare(const KernelCheckOptions &o) {
  std::vector<kcheck::Case> cases;
  uint64_t bytes = 0;
  const auto start = std::chrono::steady_clock::now();
  try {
    cases = kcheck::makeCases(o.seed);
    nlohmann::json meta = {{"tool", std::string("ttt-run ") + TTT_VERSION_STRING},
                           {"git", TTT_GIT_SHA},
                           {"reference", "CPU backend (runtime/backend/cpu), double"}};
    bytes = kcheck::writeCases(o.dir, cases, o.seed, meta);
  } catch (const std::exception &e) {
    return reportError(std::string("kernel-check prepare: ") + e.what());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-28s %-18s %-4s  %-38s %10s\n", "case", "kind", "mode", "shapes", "bytes");
  for (const kcheck::Case &c : cases) {
    uint64_t caseBytes = 0;
    for (const auto *list : {&c.inputs, &c.outputs})
      for (const kcheck::Tensor &t : *list)
        caseBytes += uint64_t(t.size()) * (t.dtype == kcheck::DType::f64 ? 8 : 4);
    std::printf("%-28s %-18s %-4s  %-38s %10llu\n", c.name.c_str(), c.kind.c_str(),
                kcheck::modeName(c.mode), c.desc.c_str(),
                static_cast<unsigned long long>(caseBytes));
  }
  std::printf("kernel-check prepare: %zu cases (seed %llu) in %s: %s, %.1f s; run "
              "`ttt-run kernel-check check %s` on the GPU machine\n",
              cases.size(), static_cast<unsigned long long>(o.seed), o.dir.c_str(),
              megabytes(bytes).c_str(), seconds, o.dir.c_str());
  return kExitOk;
}

int runCheck(const KernelCheckOptions &o) {
  std::unique_ptr<kcheck::Device> device;
  if (o.device == "cpu") {
    device = std::make_unique<kcheck::CpuFloatDevice>();
  } else {
    std::string error;
    bool noBackend = false;
    device = kcheck::makeCudaDevice(error, &noBackend);
    if (!device) {
      reportError("kernel-check check: " + error);
      return noBackend ? kExitUnavailable : kExitError;
    }
  }
  std::vector<kcheck::Case> cases;
  try {
    cases = kcheck::readCases(o.dir);
  } catch (const std::exception &e) {
    return reportError(std::string("kernel-check check: ") + e.what());
  }
  if (!o.filter.empty()) {
    std::vector<kcheck::Case> kept;
    for (kcheck::Case &c : cases)
      if (c.name.find(o.filter) != std::string::npos)
        kept.push_back(std::move(c));
    cases = std::move(kept);
    if (cases.empty())
      return reportError("kernel-check check: no case name in " + o.dir + " contains '" +
                         o.filter + "'");
  }
  std::cout << "kernel-check: " << cases.size() << " cases from " << o.dir << " on "
            << device->description() << "; each run twice\n"
            << kcheck::tableHeader() << "\n";
  std::vector<kcheck::CaseResult> results;
  for (const kcheck::Case &c : cases) {
    results.push_back(kcheck::checkCase(c, *device, 2));
    std::cout << kcheck::tableLine(results.back()) << std::endl;
  }
  const kcheck::Summary summary = kcheck::summarize(results);
  std::cout << kcheck::summaryLine(summary) << "\n";
  if (!o.json.empty()) {
    nlohmann::ordered_json doc = {{"dir", o.dir}, {"device", device->description()}};
    const nlohmann::ordered_json report = kcheck::toJson(results, summary);
    for (const auto &item : report.items())
      doc[item.key()] = item.value();
    std::ofstream os(o.json);
    os << doc.dump(1) << "\n";
    if (!os)
      return reportError("kernel-check check: " + o.json + ": cannot write the JSON report");
  }
  return summary.fail ? kExitError : kExitOk;
}
} // namespace

void registerKernelCheckCommand(CLI::App &app, CommandSelection &selection) {
  auto opts = std::make_shared<KernelCheckOptions>();
  CLI::App *cmd = app.add_subcommand(
      "kernel-check", "Every CUDA kernel against fp64 CPU references: prepare DIR here, check DIR "
                      "on the GPU machine");
  cmd->require_subcommand(1);

  CLI::App *prepare = cmd->add_subcommand(
      "prepare", "Write random inputs and fp64 CPU references of every kernel case into DIR");
  prepare->add_option("DIR", opts->dir, "output directory (created; an old kernel-check DIR is replaced)")
      ->required();
  prepare->add_option("--seed", opts->seed, "seed of the random inputs")->capture_default_str();
  prepare->callback([opts, &selection] {
    selection.action = [opts] { return runPrepare(*opts); };
  });

  CLI::App *checkCmd = cmd->add_subcommand(
      "check", "Run every case of DIR on the GPU (twice) and compare with the references");
  checkCmd->add_option("DIR", opts->dir, "a directory written by `kernel-check prepare`")
      ->required();
  checkCmd->add_option("--json", opts->json, "also write the results as JSON to FILE");
  checkCmd->add_option("--filter", opts->filter, "only the cases whose name contains TEXT");
  checkCmd->add_option("--device", opts->device,
                       "cuda (default), or cpu: the CPU backend in fp32 (checks the checker)")
      ->check(CLI::IsMember({"cuda", "cpu"}));
  checkCmd->callback([opts, &selection] {
    selection.action = [opts] { return runCheck(*opts); };
  });
}
} // namespace ttt::run
