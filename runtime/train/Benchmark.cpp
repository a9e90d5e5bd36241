// ttt-run PLAN --benchmark N / --profile (Trainer.h): the training step on the CUDA backend with
// random tokens, timed after warm-up, and the per-kernel profile of one micro-step.
#include "runtime/train/Trainer.h"

#include "runtime/exec/CudaSession.h"
#include "runtime/exec/Weights.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <map>
#include <random>

namespace ttt::train {
namespace {
constexpr double kPeakFlops = 989e12;    // H200 dense bf16 (GPU.md)
constexpr double kGemmCeiling = 790e12;  // bf16 GEMM measured on the H200 (GPU.md)

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(1ull << 30));
  return buf;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// A session with initialized weights and a random token batch of the plan's shape.
struct Bench {
  std::unique_ptr<exec::CudaSession> gpu;
  exec::NamedInts inputs;
  exec::NamedTensors<float> states, out;
  int64_t rows = 0, seq = 0;
  bool carried = false; // state passing: the states stay on the device (slot 0)
  std::string open(const plan::Plan &plan, const TrainOptions &o, bool profile) {
    if (o.backend != "cuda")
      return "--benchmark and --profile time the CUDA backend; add --backend cuda";
    if (plan.compiled()->precision() == plan::Precision::fp64)
      return "fp64 plans run on the CPU only; compile with tttc --precision bf16 (or fp32)";
    exec::CudaOptions co;
    co.graphs = o.cudaGraphs;
    co.profile = profile;
    carried = plan.recipe()->state_passing();
    co.carriedSlots = carried ? 1 : 0; // as training keeps them
    std::string err;
    gpu = exec::CudaSession::open(plan, co, err);
    if (!gpu)
      return err;
    exec::Weights<float> w;
    if (std::string e = exec::initWeights(plan, o.seed.value_or(plan.recipe()->seed()), w);
        !e.empty())
      return e;
    std::vector<const std::vector<float> *> p;
    for (const auto &x : w)
      p.push_back(&x);
    if (std::string e = gpu->setParams(p); !e.empty())
      return e;
    rows = plan.compiled()->per_device_batch();
    seq = plan.compiled()->seq_len();
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> token(3, plan.config()->vocab_size() - 1);
    for (const char *name : {"tokens", "targets"}) {
      auto &x = inputs[name];
      x.resize(size_t(rows * seq));
      for (int32_t &t : x)
        t = token(rng);
    }
    if (const plan::Program *micro = exec::findProgram(plan, "micro_step"))
      states = exec::freshStates<float>(*micro);
    return carried ? gpu->setCarried(0, states) : "";
  }
  std::string micro(double scale) {
    return gpu->run("micro_step", inputs, states.empty() ? nullptr : &states, out, scale, false,
                    carried ? 0 : -1);
  }
};
} // namespace

std::string benchmark(const plan::Plan &plan, const TrainOptions &o, int64_t iterations,
                      std::ostream &log) {
  if (iterations < 1)
    return "--benchmark N needs N >= 1 timed micro-steps";
  Bench b;
  if (std::string err = b.open(plan, o, false); !err.empty())
    return err;
  const int64_t global = plan.recipe()->global_batch();
  const int64_t accum = std::max<int64_t>(1, global / b.rows);
  const double scale = 1.0 / double(accum);
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point a) {
    return std::chrono::duration<double>(Clock::now() - a).count();
  };
  // Warm-up: the eager first run (scratch, cuBLASLt plans), then the graph's capture.
  for (int i = 0; i < 2; ++i)
    if (std::string err = b.micro(scale); !err.empty())
      return err;
  std::vector<double> micro, apply;
  for (int64_t i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    if (std::string err = b.micro(scale); !err.empty())
      return err;
    micro.push_back(seconds(t0));
  }
  for (int i = 0; i < 3; ++i) {
    double norm = 0;
    auto t0 = Clock::now();
    if (std::string err = b.gpu->applyStep(1, 0.0, 0.0, norm); !err.empty())
      return err;
    apply.push_back(seconds(t0));
  }
  const double tMicro = median(micro), tApply = median(apply);
  const double tokensMicro = double(b.rows * b.seq);
  const double tStep = double(accum) * tMicro + tApply;
  const double tokensPerS = double(accum) * tokensMicro / tStep;
  const double flops = modelFlopsPerToken(plan) * tokensPerS;
  const exec::CudaMemory mem = b.gpu->memory();
  const double used = b.gpu->deviceBytesInUse();
  const char *precision = b.gpu->bf16() ? "bf16" : "fp32";
  log << std::fixed << std::setprecision(2);
  log << "benchmark " << plan.provenance()->model_name()->str() << ", " << precision
      << ", per-device batch " << b.rows << " x seq " << b.seq << ", accumulation " << accum
      << (o.cudaGraphs ? ", CUDA graphs" : ", no graphs") << "; " << iterations
      << " timed micro-steps (median), 3 optimizer steps\n";
  log << "| model | precision | batch | micro-step ms | optimizer ms | step s | tokens/s | "
         "MFU (989) | of GEMM ceiling (790) | plan memory | device used |\n";
  log << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  log << "| " << plan.provenance()->model_name()->str() << " | " << precision << " | " << b.rows
      << " | " << tMicro * 1e3 << " | " << tApply * 1e3 << " | " << tStep << " | "
      << std::setprecision(0) << tokensPerS << std::setprecision(2) << " | "
      << 100 * flops / kPeakFlops << "% | " << 100 * flops / kGemmCeiling << "% | "
      << gib(mem.total()) << " | " << gib(used) << " |\n";
  log << "(model FLOPs: 6 x parameters per token = " << std::setprecision(0)
      << modelFlopsPerToken(plan) << "; device used: cudaMemGetInfo, context included)\n"
      << std::defaultfloat << std::setprecision(6);
  nlohmann::json j = {{"model", plan.provenance()->model_name()->str()},
                      {"precision", precision},
                      {"per_device_batch", b.rows},
                      {"seq_len", b.seq},
                      {"accumulation", accum},
                      {"micro_step_s", tMicro},
                      {"optimizer_s", tApply},
                      {"step_s", tStep},
                      {"tokens_per_s", tokensPerS},
                      {"mfu", flops / kPeakFlops},
                      {"gemm_ceiling_share", flops / kGemmCeiling},
                      {"plan_memory_bytes", mem.total()},
                      {"device_used_bytes", used},
                      {"graphs", o.cudaGraphs}};
  log << j.dump() << "\n";
  return "";
}

std::string profile(const plan::Plan &plan, const TrainOptions &o, const std::string &jsonPath,
                    std::ostream &log) {
  Bench b;
  if (std::string err = b.open(plan, o, true); !err.empty())
    return err;
  // One warm-up (scratch, cuBLASLt plans), then the profiled micro-step: the session keeps
  // summing, so the second run's times are the difference.
  if (std::string err = b.micro(1.0); !err.empty())
    return err;
  auto first = b.gpu->profile();
  if (std::string err = b.micro(1.0); !err.empty())
    return err;
  std::map<std::string, exec::KernelTime> warm;
  for (const auto &k : first)
    warm[k.kernel] = k;
  std::map<std::string, exec::KernelTime> byKernel, byLayer;
  nlohmann::json rows = nlohmann::json::array();
  double total = 0;
  for (const auto &k : b.gpu->profile()) {
    const exec::KernelTime &w = warm[k.kernel];
    const double ms = k.ms - w.ms;
    const int64_t calls = k.calls - w.calls;
    const size_t tab = k.kernel.find('\t');
    const std::string layer = k.kernel.substr(0, tab), kernel = k.kernel.substr(tab + 1);
    byKernel[kernel].kernel = kernel;
    byKernel[kernel].ms += ms;
    byKernel[kernel].calls += calls;
    byLayer[layer].kernel = layer;
    byLayer[layer].ms += ms;
    byLayer[layer].calls += calls;
    total += ms;
    rows.push_back({{"layer", layer}, {"kernel", kernel}, {"calls", calls}, {"ms", ms}});
  }
  auto print = [&](const char *title, std::map<std::string, exec::KernelTime> &m) {
    std::vector<exec::KernelTime> v;
    for (auto &[name, k] : m)
      v.push_back(k);
    std::sort(v.begin(), v.end(), [](auto &a, auto &c) { return a.ms > c.ms; });
    log << "| " << title << " | calls | ms | share |\n|---|---|---|---|\n";
    for (const auto &k : v)
      log << "| " << k.kernel << " | " << k.calls << " | " << std::fixed << std::setprecision(3)
          << k.ms << " | " << std::setprecision(1) << 100 * k.ms / total << "% |\n"
          << std::defaultfloat;
  };
  log << "profile of one micro-step (" << plan.provenance()->model_name()->str() << ", "
      << (b.gpu->bf16() ? "bf16" : "fp32") << ", batch " << b.rows << " x " << b.seq
      << ", eager launches with CUDA events around each instruction): " << std::fixed
      << std::setprecision(1) << total << " ms in kernels\n" << std::defaultfloat;
  print("kernel", byKernel);
  print("layer", byLayer);
  nlohmann::json j = {{"model", plan.provenance()->model_name()->str()},
                      {"precision", b.gpu->bf16() ? "bf16" : "fp32"},
                      {"per_device_batch", b.rows},
                      {"seq_len", b.seq},
                      {"total_ms", total},
                      {"kernels", rows}};
  if (!jsonPath.empty()) {
    std::ofstream f(jsonPath);
    f << j.dump(1) << "\n";
    if (!f)
      return jsonPath + ": cannot write the profile";
    log << "profile JSON: " << jsonPath << "\n";
  }
  return "";
}
} // namespace ttt::train
