#include "runtime/train/Trainer.h"

#include "runtime/backend/cpu/Backward.h"
#include "runtime/data/Loader.h"
#include "runtime/exec/Evaluate.h"
#include "runtime/exec/Interpreter.h"
#include "runtime/exec/Weights.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>

namespace ttt::train {
namespace {
using exec::Weights;

struct Schedule {
  double peak, end;
  int64_t warmup, total;
};

// Runs the plan's apply_step program (see PlanWriter): clip, then AdamW on every parameter.
template <typename T>
std::string applyStep(const plan::Program &apply, const std::vector<std::vector<T> *> &params,
                      const Weights<T> &grads,
                      Weights<T> &m, Weights<T> &v, int64_t step, double lr, double weightDecay,
                      double &gradNorm) {
  double clipScale = 1.0;
  for (const plan::Instr *ins : *apply.instrs()) {
    std::string op = ins->op()->str();
    if (op == "reduce_grads") {
      continue; // one rank: nothing to reduce (issue 11 brings NCCL/MPI here)
    } else if (op == "clip_global_norm") {
      double sum = 0;
      for (int32_t id : *ins->operands())
        sum += cpu::sumSquares<T>(grads[id].data(), int64_t(grads[id].size()));
      gradNorm = std::sqrt(sum);
      double maxNorm = ins->floats()->Get(0);
      clipScale = gradNorm > maxNorm ? maxNorm / gradNorm : 1.0;
    } else if (op == "adamw") {
      int64_t i = ins->ints()->Get(0);
      bool decay = ins->ints()->Get(1) != 0;
      const auto &f = *ins->floats();
      cpu::adamwStep<T>(params[i]->data(), grads[i].data(), m[i].data(), v[i].data(),
                        int64_t(params[i]->size()), lr, f.Get(0), f.Get(1), f.Get(2), weightDecay,
                        decay, step, clipScale);
    } else {
      return "apply_step: unknown instruction '" + op + "' (plan from a newer tttc?)";
    }
  }
  return "";
}

template <typename T>
std::string run(const plan::Plan &plan, const TrainOptions &o, std::ostream &log) {
  const plan::Recipe &recipe = *plan.recipe();
  const plan::Compiled &compiled = *plan.compiled();
  const plan::Program *micro = exec::findProgram(plan, "micro_step");
  const plan::Program *apply = exec::findProgram(plan, "apply_step");
  if (!micro || !apply)
    return "the plan has no micro_step/apply_step program; recompile it with this tttc";
  if (o.backend != "cpu")
    return "--backend " + o.backend + " is not available in this build yet (issue 8); use --backend cpu";

  // Batch math: accumulation = global batch / (per-device batch x ranks).
  const int64_t rows = compiled.per_device_batch(), seq = compiled.seq_len(), ranks = 1;
  const int64_t global = recipe.global_batch();
  if (global % (rows * ranks) != 0)
    return "global batch " + std::to_string(global) + " is not a multiple of per-device batch " +
           std::to_string(rows) + " x " + std::to_string(ranks) + " ranks";
  const int64_t accum = o.gradAccumulation.value_or(global / (rows * ranks));
  if (accum * rows * ranks != global)
    return "--gradient-accumulation-steps " + std::to_string(accum) + " x per-device batch " +
           std::to_string(rows) + " x " + std::to_string(ranks) + " ranks != global batch " +
           std::to_string(global) + "; recompile with tttc --per-device-batch to change";
  Schedule sched{o.lr.value_or(recipe.lr()), o.lrEnd.value_or(recipe.lr_end()),
                 o.warmupSteps.value_or(recipe.warmup_steps()), recipe.total_steps()};
  const int64_t steps = o.maxSteps.value_or(sched.total);
  const double weightDecay = o.weightDecay.value_or(recipe.weight_decay());
  const uint64_t seed = o.seed.value_or(uint64_t(recipe.seed()));

  Weights<T> params, m, v, grads;
  if (std::string err = o.weights.empty() ? exec::initWeights(plan, seed, params)
                                          : exec::loadWeights(plan, o.weights, params);
      !err.empty())
    return err;
  for (const auto &p : params) {
    m.emplace_back(p.size(), T(0));
    v.emplace_back(p.size(), T(0));
    grads.emplace_back(p.size(), T(0));
  }
  const auto &table = *plan.parameters();
  std::vector<std::string> names;
  for (const plan::Parameter *p : table)
    names.push_back(p->name()->str());

  data::SourceOptions source;
  source.data = o.data;
  data::DataReport report;
  std::unique_ptr<data::Tokenizer> tok;
  std::unique_ptr<data::ShardSource> shards;
  std::unique_ptr<data::TrainLoader> loader;
  // batches:FILE: global batches taken in order from a token batch file (wrapping around).
  exec::NamedInts fileBatches;
  int64_t fileRows = 0;
  const std::string batchesPrefix = "batches:";
  if (o.data.rfind(batchesPrefix, 0) == 0) {
    std::string path = o.data.substr(batchesPrefix.size());
    if (std::string err = exec::readBatchFile(path, -1, seq, fileBatches); !err.empty())
      return err;
    fileRows = int64_t(fileBatches["tokens"].size()) / seq;
    if (fileRows % global != 0)
      return path + ": " + std::to_string(fileRows) + " sequences, not a multiple of the global batch " +
             std::to_string(global);
  } else try {
    tok = data::Tokenizer::load(o.tokenizer);
    shards = std::make_unique<data::ShardSource>(source);
    data::LoaderOptions lo;
    lo.seqLen = int(seq);
    lo.globalBatch = int(global);
    lo.seed = seed;
    lo.threads = o.threads;
    loader = std::make_unique<data::TrainLoader>(*shards, *tok, lo, report);
  } catch (const std::exception &e) {
    return e.what();
  }

  std::ofstream jsonl;
  if (!o.outputDir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.outputDir, ec);
    if (ec)
      return o.outputDir + ": cannot create the output directory: " + ec.message();
    jsonl.open(o.outputDir + "/train_log.jsonl", std::ios::trunc);
  }
  log << "training " << plan.provenance()->model_name()->str() << ": " << steps << " steps x "
      << global << " sequences x " << seq << " tokens (accumulation " << accum << " x "
      << rows << "), " << (sizeof(T) == 8 ? "fp64" : "fp32") << ", backend cpu, seed " << seed
      << "\n";

  // Parameters live in `named` (the programs read them by name); the optimizer updates them there.
  exec::NamedTensors<T> named;
  for (size_t i = 0; i < params.size(); ++i)
    named[names[i]] = std::move(params[i]);
  std::vector<std::vector<T> *> live;
  for (const std::string &n : names)
    live.push_back(&named[n]);
  exec::ProgramRunner<T> runner(*micro);
  exec::NamedTensors<T> out;
  exec::NamedInts inputs;

  const auto start = std::chrono::steady_clock::now();
  data::Batch batch;
  for (int64_t step = 0; step < steps; ++step) {
    for (auto &g : grads)
      std::fill(g.begin(), g.end(), T(0));
    double loss = 0;
    if (fileRows) {
      int64_t first = (step * global) % fileRows;
      auto rowsOf = [&](const std::vector<int32_t> &x) {
        return std::vector<int32_t>(x.begin() + first * seq, x.begin() + (first + global) * seq);
      };
      batch.inputs = rowsOf(fileBatches["tokens"]);
      batch.targets = rowsOf(fileBatches["targets"]);
    } else {
      try {
        loader->next(batch);
      } catch (const std::exception &e) {
        return std::string("data: ") + e.what();
      }
    }
    for (int64_t a = 0; a < accum; ++a) {
      auto begin = [&](const std::vector<int32_t> &x) { return x.begin() + a * rows * seq; };
      inputs["tokens"].assign(begin(batch.inputs), begin(batch.inputs) + rows * seq);
      inputs["targets"].assign(begin(batch.targets), begin(batch.targets) + rows * seq);
      if (std::string err = runner.run(named, inputs, out); !err.empty())
        return err;
      loss += double(out.at("loss").at(0)) / double(accum);
      for (size_t i = 0; i < params.size(); ++i) {
        const std::vector<T> &g = out.at("grad:" + names[i]);
        for (size_t j = 0; j < g.size(); ++j)
          grads[i][j] += g[j] / T(accum);
      }
    }
    // The optimizer's own count starts at 0, so the first update uses lr(0) (0 with warmup),
    // exactly like the reference (optax); see docs/training.md.
    double lr = cpu::warmupCosineLr(step, sched.peak, sched.end, sched.warmup, sched.total);
    double gradNorm = 0;
    if (std::string err = applyStep(*apply, live, grads, m, v, step + 1, lr, weightDecay,
                                    gradNorm);
        !err.empty())
      return err;
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double tokens = double(step + 1) * double(global * seq);
    log << "step " << std::setw(5) << step + 1 << "/" << steps << "  loss " << std::fixed
        << std::setprecision(4) << loss << "  grad_norm " << std::setprecision(3) << gradNorm
        << "  lr " << std::scientific << std::setprecision(2) << lr << std::defaultfloat
        << "  " << std::setprecision(0) << std::fixed << tokens / seconds << " tok/s  "
        << std::setprecision(1) << seconds << " s" << std::defaultfloat << std::setprecision(6)
        << "\n"
        << std::flush;
    if (jsonl)
      jsonl << nlohmann::json{{"step", step + 1}, {"loss", loss},   {"grad_norm", gradNorm},
                              {"lr", lr},         {"tokens", tokens}, {"seconds", seconds}}
                   .dump()
            << "\n"
            << std::flush;
  }
  if (!o.outputDir.empty()) {
    std::filesystem::create_directories(o.outputDir + "/final_model");
    for (size_t i = 0; i < params.size(); ++i)
      params[i] = *live[i];
    if (std::string err = exec::saveWeights(plan, params, o.outputDir + "/final_model/model.safetensors");
        !err.empty())
      return err;
    log << "wrote " << o.outputDir << "/final_model/model.safetensors\n";
  }
  return "";
}
} // namespace

std::string train(const plan::Plan &plan, const TrainOptions &options, std::ostream &log) {
  if (plan.compiled()->precision() == plan::Precision::fp64)
    return run<double>(plan, options, log);
  return run<float>(plan, options, log);
}
} // namespace ttt::train
