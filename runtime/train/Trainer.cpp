#include "runtime/train/Trainer.h"

#include "runtime/backend/cpu/Backward.h"
#include "runtime/data/Loader.h"
#include "runtime/exec/Evaluate.h"
#include "runtime/exec/Interpreter.h"
#include "runtime/exec/Weights.h"
#include "runtime/tensorboard/TensorBoard.h"
#include "runtime/train/Checkpoint.h"

#include <csignal>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>

namespace ttt::train {
namespace {
using exec::Weights;

// SIGINT/SIGTERM (Ctrl-C, preemption): the step in flight finishes, a checkpoint is saved, the
// run exits 0. A second signal restores the default action (a hard stop).
volatile std::sig_atomic_t gStopSignal = 0;
class StopSignals {
public:
  StopSignals() {
    gStopSignal = 0;
    previousInt_ = std::signal(SIGINT, handle);
    previousTerm_ = std::signal(SIGTERM, handle);
  }
  ~StopSignals() {
    std::signal(SIGINT, previousInt_);
    std::signal(SIGTERM, previousTerm_);
  }
  bool stopRequested() const { return gStopSignal != 0; }
  const char *which() const { return gStopSignal == SIGTERM ? "SIGTERM" : "SIGINT"; }

private:
  static void handle(int sig) {
    gStopSignal = sig;
    std::signal(sig, SIG_DFL);
  }
  void (*previousInt_)(int);
  void (*previousTerm_)(int);
};

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
  if (std::none_of(micro->instrs()->begin(), micro->instrs()->end(), [](const plan::Instr *i) {
        return i->op()->str() == "accumulate_grad";
      }))
    return "the plan's micro_step accumulates no gradients (written by an older tttc); recompile it";
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

  // Weights and AdamW moments: a checkpoint, HF weights, or the init program. With state
  // passing, each micro-batch slot carries its rows' states from step to step.
  TrainState<T> state;
  const bool statePassing = recipe.state_passing();
  if (statePassing)
    state.streams.assign(size_t(accum), exec::freshStates<T>(*micro));
  if (!o.resumeFrom.empty()) {
    if (std::string err = loadCheckpoint(plan, o.resumeFrom, state); !err.empty())
      return err;
  } else {
    std::string err = o.weights.empty() ? exec::initWeights(plan, seed, state.params)
                                        : exec::loadWeights(plan, o.weights, state.params);
    if (!err.empty())
      return err;
    for (const auto &p : state.params) {
      state.m.emplace_back(p.size(), T(0));
      state.v.emplace_back(p.size(), T(0));
    }
  }
  Weights<T> &params = state.params, &m = state.m, &v = state.v, grads;
  for (const auto &p : params)
    grads.emplace_back(p.size(), T(0));
  const int64_t saveEvery = o.saveEvery.value_or(recipe.checkpoint_every());
  const int64_t milestoneEvery = o.milestoneEvery.value_or(recipe.milestone_every());
  state.args = {{"data", o.data},          {"backend", o.backend},     {"max_train_steps", steps},
                {"learning_rate", sched.peak}, {"lr_end", sched.end},   {"lr_warmup_steps", sched.warmup},
                {"total_steps", sched.total}, {"weight_decay", weightDecay}, {"seed", seed},
                {"gradient_accumulation_steps", accum}, {"per_device_train_batch_size", rows},
                {"seq_length", seq},        {"global_batch", global},    {"output_dir", o.outputDir}};
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
  std::string tokenizerPath;
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
    tokenizerPath = data::Tokenizer::locate(o.tokenizer, nullptr);
    tok = data::Tokenizer::load(o.tokenizer);
    shards = std::make_unique<data::ShardSource>(source);
    data::LoaderOptions lo;
    lo.seqLen = int(seq);
    lo.globalBatch = int(global);
    lo.seed = seed;
    lo.threads = o.threads;
    if (statePassing)
      lo.mode = data::BatchMode::RowStreams; // row r of step s+1 continues row r of step s
    loader = std::make_unique<data::TrainLoader>(*shards, *tok, lo, report);
    if (!o.resumeFrom.empty())
      loader->seek(data::Cursor::deserialize(state.dataCursor));
  } catch (const std::exception &e) {
    return e.what();
  }
  auto cursorNow = [&] { return loader ? loader->cursor().serialize() : std::string("batches"); };

  std::ofstream jsonl;
  std::unique_ptr<tensorboard::EventWriter> events; // OUT/tensorboard, flushed every step
  if (!o.outputDir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.outputDir, ec);
    if (ec)
      return o.outputDir + ": cannot create the output directory: " + ec.message();
    jsonl.open(o.outputDir + "/train_log.jsonl",
               o.resumeFrom.empty() ? std::ios::trunc : std::ios::app);
    std::string err;
    events = tensorboard::EventWriter::open(o.outputDir + "/tensorboard", err);
    if (!events)
      return err;
  }
  log << "training " << plan.provenance()->model_name()->str()
      << (statePassing ? " (state passing)" : "") << ": " << steps << " steps x "
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
  // micro_step adds each gradient / accum into its accumulator as soon as it is final.
  exec::NamedTensors<T> accumulators;
  for (const std::string &n : names)
    accumulators[n].assign(named[n].size(), T(0));
  exec::GradientSink<T> sink{&accumulators, 1.0 / double(accum), nullptr};
  exec::NamedTensors<T> out;
  exec::NamedInts inputs;

  const auto start = std::chrono::steady_clock::now();
  const int64_t firstStep = state.step;
  data::Batch batch;
  StopSignals signals;
  auto save = [&](const std::string &name) -> std::string {
    if (o.outputDir.empty())
      return "";
    for (size_t i = 0; i < params.size(); ++i)
      params[i] = *live[i];
    state.dataCursor = cursorNow();
    std::string dir = o.outputDir + "/" + name;
    if (std::string err = saveCheckpoint(plan, state, tokenizerPath, dir); !err.empty())
      return err;
    log << "saved " << dir << "\n" << std::flush;
    return "";
  };
  for (int64_t step = state.step; step < steps; ++step) {
    for (auto &[name, g] : accumulators)
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
      exec::NamedTensors<T> *streams = statePassing ? &state.streams[size_t(a)] : nullptr;
      if (streams && batch.streamsReset)
        (*streams)["state:reset"].assign(1, T(1));
      if (std::string err = runner.run(named, inputs, out, &sink, streams); !err.empty())
        return err;
      if (streams) {
        // The final states become the next step's initial ones, without gradient.
        for (auto &[name, values] : out)
          if (name.rfind("state_out:", 0) == 0)
            (*streams)["state:" + name.substr(10)].swap(values);
        (*streams)["state:reset"].assign(1, T(0));
      }
      loss += double(out.at("loss").at(0)) / double(accum);
    }
    if (!std::isfinite(loss))
      return "step " + std::to_string(step + 1) + ": the loss is " + std::to_string(loss) +
             "; stopping (" + (save("checkpoint-" + std::to_string(step)).empty()
                                   ? "the state before this step is saved"
                                   : "no checkpoint could be written") + ")";
    for (size_t i = 0; i < names.size(); ++i)
      for (T g : accumulators[names[i]])
        if (!std::isfinite(double(g)))
          return "step " + std::to_string(step + 1) + ": the gradient of " + names[i] +
                 " is not finite; stopping (" +
                 (save("checkpoint-" + std::to_string(step)).empty()
                      ? "the state before this step is saved"
                      : "no checkpoint could be written") + ")";
    // The optimizer's own count starts at 0, so the first update uses lr(0) (0 with warmup),
    // exactly like the reference (optax); see docs/training.md.
    double lr = cpu::warmupCosineLr(step, sched.peak, sched.end, sched.warmup, sched.total);
    double gradNorm = 0;
    for (size_t i = 0; i < names.size(); ++i)
      grads[i].swap(accumulators[names[i]]);
    std::string applyErr = applyStep(*apply, live, grads, m, v, step + 1, lr, weightDecay, gradNorm);
    for (size_t i = 0; i < names.size(); ++i)
      grads[i].swap(accumulators[names[i]]);
    if (std::string err = applyErr;
        !err.empty())
      return err;
    state.step = step + 1;
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double tokens = double(step + 1 - firstStep) * double(global * seq);
    double eta = seconds / double(step + 1 - firstStep) * double(steps - step - 1);
    log << "step " << std::setw(5) << step + 1 << "/" << steps << "  loss " << std::fixed
        << std::setprecision(4) << loss << "  grad_norm " << std::setprecision(3) << gradNorm
        << "  lr " << std::scientific << std::setprecision(2) << lr << std::defaultfloat
        << "  " << std::setprecision(0) << std::fixed << tokens / seconds << " tok/s  "
        << std::setprecision(1) << seconds << " s  eta " << std::setprecision(0) << eta << " s"
        << std::defaultfloat << std::setprecision(6) << "\n"
        << std::flush;
    if (jsonl)
      jsonl << nlohmann::json{{"step", step + 1}, {"loss", loss},   {"grad_norm", gradNorm},
                              {"lr", lr},         {"tokens", tokens}, {"seconds", seconds}}
                   .dump()
            << "\n"
            << std::flush;
    if (events) {
      double wall = std::chrono::duration<double>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
      for (auto [tag, value] : {std::pair<const char *, double>{"loss", loss},
                                {"grad_norm", gradNorm},
                                {"lr", lr},
                                {"tokens", tokens},
                                {"tokens_per_s", tokens / seconds}})
        events->scalar(tag, step + 1, value, wall);
      if (std::string err = events->flush(); !err.empty())
        return err;
    }
    if (!o.outputDir.empty() && state.step % milestoneEvery == 0 && state.step < steps)
      if (std::string err = save("milestone-" + std::to_string(state.step)); !err.empty())
        return err;
    if (!o.outputDir.empty() && state.step % saveEvery == 0 && state.step < steps) {
      if (std::string err = save("checkpoint-" + std::to_string(state.step)); !err.empty())
        return err;
      pruneCheckpoints(o.outputDir, o.keepCheckpoints);
    }
    if (signals.stopRequested()) {
      log << "stopping after step " << state.step << " (signal " << signals.which() << ")\n";
      if (o.outputDir.empty())
        return "";
      if (std::string err = save("checkpoint-" + std::to_string(state.step)); !err.empty())
        return err;
      pruneCheckpoints(o.outputDir, o.keepCheckpoints);
      return "";
    }
  }
  if (std::string err = save("final_model"); !err.empty())
    return err;
  return "";
}
} // namespace

std::string train(const plan::Plan &plan, const TrainOptions &options, std::ostream &log) {
  if (plan.compiled()->precision() == plan::Precision::fp64)
    return run<double>(plan, options, log);
  return run<float>(plan, options, log);
}
} // namespace ttt::train
