#include "runtime/train/Trainer.h"

#include "runtime/backend/cpu/Backward.h"
#include "runtime/data/Loader.h"
#include "runtime/dist/Comm.h"
#include "runtime/dist/Shard.h"
#include "runtime/exec/CudaRunner.h"
#include "runtime/exec/CudaSession.h"
#include "runtime/exec/Evaluate.h"
#include "runtime/exec/HumanBytes.h"
#include "runtime/exec/Interpreter.h"
#include "runtime/exec/Weights.h"
#include "runtime/tensorboard/TensorBoard.h"
#include "runtime/train/Checkpoint.h"

#include <csignal>
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>

namespace ttt::train {
namespace {
using exec::humanBytes;
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

// Several ranks: a rank that hangs or dies inside a collective leaves the others waiting in MPI
// or NCCL, which never time out by themselves. The watchdog ends this process with one line when
// a step has not finished within the limit; mpirun and srun then end the job (a rank exited
// non-zero), a torchrun-style rendezvous names the rank. Checkpoints are written atomically, so
// the last one stays intact.
class StepWatchdog {
public:
  StepWatchdog(double seconds, int rank) : limit_(seconds), rank_(rank) {
    if (limit_ > 0)
      thread_ = std::thread([this] { watch(); });
  }
  ~StepWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }
  // Step `step` (1-based) starts now.
  void beat(int64_t step) {
    std::lock_guard<std::mutex> lock(mutex_);
    step_ = step;
    since_ = std::chrono::steady_clock::now();
  }

private:
  void watch() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!done_) {
      wake_.wait_for(lock, std::chrono::milliseconds(250));
      const double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
      if (!done_ && step_ > 0 && waited > limit_) {
        std::fprintf(stderr,
                     "ttt-run: error: rank %d: step %lld did not finish within %g s: another rank "
                     "hangs or died (MPI and NCCL wait forever); stopping this rank (the last "
                     "checkpoint is intact; --step-timeout sets the limit)\n",
                     rank_, static_cast<long long>(step_), limit_);
        std::fflush(stderr);
        std::_Exit(3);
      }
    }
  }
  const double limit_;
  const int rank_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  int64_t step_ = 0;
  std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
  std::thread thread_;
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
      continue; // the trainer has summed the ranks' gradients already (or per bucket)
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

// apply_step with ZeRO-1 on the CPU: AdamW on this rank's slice of the flat parameter space only.
// `grads`, `m`, `v` hold the slice; `sumSquares` is the global one (every rank's slice, added in
// rank order); pieces(i, fn) calls fn(offset in parameter i, offset in the slice, count) for
// the part of parameter i in the slice.
template <typename T, typename Pieces>
std::string applyStepSlice(const plan::Program &apply, const std::vector<std::vector<T> *> &params,
                           const T *grads, T *m, T *v, double sumSquares, const Pieces &pieces,
                           int64_t step, double lr, double weightDecay, double &gradNorm) {
  double clipScale = 1.0;
  for (const plan::Instr *ins : *apply.instrs()) {
    std::string op = ins->op()->str();
    if (op == "reduce_grads") {
      continue; // the reduce-scatter before this step did it
    } else if (op == "clip_global_norm") {
      gradNorm = std::sqrt(sumSquares);
      double maxNorm = ins->floats()->Get(0);
      clipScale = gradNorm > maxNorm ? maxNorm / gradNorm : 1.0;
    } else if (op == "adamw") {
      int64_t i = ins->ints()->Get(0);
      if (i < 0 || size_t(i) >= params.size())
        return "apply_step: parameter index out of range; the plan is corrupt";
      bool decay = ins->ints()->Get(1) != 0;
      const auto &f = *ins->floats();
      pieces(size_t(i), [&](int64_t at, int64_t s, int64_t n) {
        cpu::adamwStep<T>(params[size_t(i)]->data() + at, grads + s, m + s, v + s, n, lr, f.Get(0),
                          f.Get(1), f.Get(2), weightDecay, decay, step, clipScale);
      });
    } else {
      return "apply_step: unknown instruction '" + op + "' (plan from a newer tttc?)";
    }
  }
  return "";
}

struct BatchMath {
  int64_t rows, seq, ranks, global, accum, steps;
  Schedule sched;
  double weightDecay;
  uint64_t seed;
};

// accumulation = global batch / (per-device batch x ranks), and the schedule with the flags'
// overrides. "" or the error naming the flag (or the tttc flag) to change.
std::string resolveBatch(const plan::Plan &plan, const TrainOptions &o, int ranks, BatchMath &b) {
  const plan::Recipe &recipe = *plan.recipe();
  const plan::Compiled &compiled = *plan.compiled();
  b.rows = compiled.per_device_batch();
  b.seq = compiled.seq_len();
  b.ranks = ranks;
  b.global = recipe.global_batch();
  if (b.global % (b.rows * b.ranks) != 0)
    return "global batch " + std::to_string(b.global) + " is not a multiple of per-device batch " +
           std::to_string(b.rows) + " x " + std::to_string(b.ranks) +
           " ranks; recompile with tttc --per-device-batch";
  b.accum = o.gradAccumulation.value_or(b.global / (b.rows * b.ranks));
  if (b.accum * b.rows * b.ranks != b.global)
    return "--gradient-accumulation-steps " + std::to_string(b.accum) + " x per-device batch " +
           std::to_string(b.rows) + " x " + std::to_string(b.ranks) + " ranks != global batch " +
           std::to_string(b.global) + "; recompile with tttc --per-device-batch to change";
  // Shapes and precision are compiled into the plan: a contradicting flag names the tttc flag.
  if (o.perDeviceBatch && *o.perDeviceBatch != b.rows)
    return "--per-device-train-batch-size " + std::to_string(*o.perDeviceBatch) +
           " contradicts the plan's " + std::to_string(b.rows) + "; recompile with tttc "
           "--per-device-batch " + std::to_string(*o.perDeviceBatch);
  if (o.seqLength && *o.seqLength != b.seq)
    return "--seq-length " + std::to_string(*o.seqLength) + " contradicts the plan's " +
           std::to_string(b.seq) + "; recompile with tttc --seq-len " + std::to_string(*o.seqLength);
  if (!o.mixedPrecision.empty()) {
    const char *compiled = plan.compiled()->precision() == plan::Precision::fp64   ? "fp64"
                           : plan.compiled()->precision() == plan::Precision::fp32 ? "fp32"
                                                                                   : "bf16";
    if (o.mixedPrecision != compiled)
      return "--mixed-precision " + o.mixedPrecision + " contradicts the plan's " + compiled +
             "; recompile with tttc --precision " + o.mixedPrecision;
  }
  if (o.statePassing && *o.statePassing != recipe.state_passing())
    return std::string("--state-passing ") + (*o.statePassing ? "true" : "false") +
           " contradicts the plan; recompile with tttc --state-passing " +
           (*o.statePassing ? "true" : "false");
  b.sched = Schedule{o.lr.value_or(recipe.lr()), o.lrEnd.value_or(recipe.lr_end()),
                     o.warmupSteps.value_or(recipe.warmup_steps()), recipe.total_steps()};
  if (b.sched.warmup < 0 || b.sched.warmup > b.sched.total)
    return "--lr-warmup-steps " + std::to_string(b.sched.warmup) + " must be within [0, " +
           std::to_string(b.sched.total) + "]";
  b.steps = o.maxSteps.value_or(b.sched.total);
  b.weightDecay = o.weightDecay.value_or(recipe.weight_decay());
  b.seed = o.seed.value_or(uint64_t(recipe.seed()));
  return "";
}

// MemAvailable of /proc/meminfo in bytes, or 0 when unknown.
double availableHostBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:")
      return kb * 1024;
  return 0;
}

double peakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) * 1024;
}

// Mean of eval_step's per-batch loss over about opts.evalTokens validation tokens (the
// reference's evaluation: mean of per-batch losses; perplexity = exp).
// On the CUDA backend the training's session runs it (the weights on the device), else a runner
// of --backend with `params`.
template <typename T>
std::string validate(const plan::Plan &plan, const TrainOptions &o, const exec::NamedTensors<T> &params,
                     double &loss, int64_t &tokens, exec::CudaSession *gpu = nullptr) {
  const plan::Program *eval = exec::findProgram(plan, "eval_step");
  if (!eval)
    return "the plan has no eval_step program; recompile it with this tttc";
  const int64_t rows = plan.compiled()->per_device_batch(), seq = plan.compiled()->seq_len();
  try {
    auto tok = data::Tokenizer::load(o.tokenizer);
    data::SourceOptions source;
    source.data = o.data;
    data::ShardSource shards(source);
    data::LoaderOptions lo;
    lo.seqLen = int(seq);
    lo.globalBatch = int(rows);
    lo.threads = o.threads;
    data::DataReport report;
    data::ValidationLoader loader(shards, *tok, lo, report);
    exec::BackendRunner<T> runner(plan, *eval, gpu ? "cpu" : o.backend);
    exec::NamedTensors<T> states = exec::freshStates<T>(*eval), out;
    data::Batch batch;
    double sum = 0;
    int64_t batches = 0;
    tokens = 0;
    while (tokens < o.evalTokens && loader.next(batch)) {
      exec::NamedInts inputs{{"tokens", batch.inputs}, {"targets", batch.targets}};
      std::string err;
      if constexpr (std::is_same_v<T, float>)
        err = gpu ? gpu->run("eval_step", inputs, &states, out)
                  : runner.run(params, inputs, out, nullptr, &states);
      else
        err = runner.run(params, inputs, out, nullptr, &states);
      if (!err.empty())
        return err;
      sum += double(out.at("loss").at(0));
      ++batches;
      tokens += rows * seq;
    }
    if (batches == 0)
      return "validation: the source has fewer than " + std::to_string(rows) + " x " +
             std::to_string(seq + 1) + " validation tokens";
    loss = sum / double(batches);
  } catch (const std::exception &e) {
    return std::string("validation: ") + e.what();
  }
  return "";
}

// Rank 0 writes the periodic checkpoints on a thread of its own while the steps go on: the state
// is copied to the host first (a snapshot the steps no longer touch), then written, fsynced and
// renamed into place there. One write at a time: the next save, a stop and the end of the run
// wait for the one in flight; so does the destructor, on every way out of the run.
class CheckpointWriter {
public:
  ~CheckpointWriter() { wait(); }
  CheckpointWriter() = default;
  CheckpointWriter(const CheckpointWriter &) = delete;
  CheckpointWriter &operator=(const CheckpointWriter &) = delete;

  void start(std::vector<std::string> dirs, std::function<std::string()> write) {
    dirs_ = std::move(dirs);
    done_ = false;
    thread_ = std::thread([this, write = std::move(write)] {
      try {
        err_ = write();
      } catch (const std::exception &e) {
        err_ = dirs_.front() + ": " + e.what();
      }
      done_ = true;
    });
  }
  // Whether a write has finished and not been waited for.
  bool finished() const { return thread_.joinable() && done_; }
  // Waits for the write in flight, if any: "" and its directories in `saved`, or its error.
  std::string wait(std::vector<std::string> *saved = nullptr) {
    if (!thread_.joinable())
      return "";
    thread_.join();
    if (saved && err_.empty())
      *saved = dirs_;
    return std::exchange(err_, std::string());
  }

private:
  std::thread thread_;
  std::atomic<bool> done_{true};
  std::vector<std::string> dirs_;
  std::string err_;
};

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
  if (o.backend != "cpu" && o.backend != "cuda")
    return "--backend " + o.backend + " is not available: the backends are cpu and cuda";

  // The processes of this job (mpirun/srun: one per rank; otherwise one).
  std::string commErr;
  auto comm = dist::openCommunicator(commErr);
  if (!comm)
    return commErr;
  const bool lead = comm->rank() == 0; // writes logs and checkpoints
  const int ranks = comm->size(), rank = comm->rank();
  if (o.zero != 0 && o.zero != 1)
    return "--zero must be 0 or 1 (1: the AdamW state sharded over the ranks, ZeRO-1; 0: a "
           "full copy on every rank), not " + std::to_string(o.zero);
  // ZeRO-1: each rank keeps the AdamW moments of its slice of the parameters only.
  const bool zero = o.zero == 1 && ranks > 1;
  std::ostringstream quiet;
  std::ostream &out0 = lead ? log : quiet;
  BatchMath bm;
  if (std::string err = resolveBatch(plan, o, comm->size(), bm); !err.empty())
    return err;
  const int64_t rows = bm.rows, seq = bm.seq, global = bm.global;
  const int64_t accum = bm.accum, steps = bm.steps;
  const Schedule sched = bm.sched;
  const double weightDecay = bm.weightDecay;
  const double flopsPerToken = modelFlopsPerToken(plan);
  // MFU against the H200's dense bf16 peak on the CUDA backend; the CPU has no fixed peak, so
  // there only the achieved rate is shown.
  const double peakFlops = o.backend == "cuda" ? 989e12 : 0;
  const uint64_t seed = bm.seed;
  // Fail early: the plan's memory need against what this machine has free.
  // (On the GPU the session checks the device's memory when it allocates the plan's.)
  const double need = planMemory(plan, comm->size(), zero).total();
  const double available = availableHostBytes();
  if (o.backend == "cpu" && need > 0 && available > 0 && need > available)
    return "the plan needs " + humanBytes(need) +
           " of memory (parameters, gradients, AdamW "
           "moments, checkpoints, activations, carried states) but " +
           humanBytes(available) +
           " is available; compile with a smaller tttc --per-device-batch (accumulation grows to "
           "keep the global batch)";

  if (o.backend == "cpu" && comm->name() == "torchrun" && comm->size() > 1)
    return "the CPU backend reduces gradients over MPI: launch it with mpirun or srun "
           "(torchrun-style launches drive the CUDA backend's NCCL)";
  // --backend cuda: parameters, gradients and moments live on the device for the whole run; the
  // host copies are refreshed only to save a checkpoint. Opened before the weights are made, so
  // a plan that does not fit the GPU fails at once.
  std::unique_ptr<exec::CudaSession> gpu;
  if constexpr (std::is_same_v<T, float>) {
    if (o.backend == "cuda") {
      std::string err;
      exec::CudaOptions co;
      co.graphs = o.cudaGraphs;
      co.shards = zero ? ranks : 1;
      co.shardRank = rank;
      co.overlap = o.overlapReduction;
      co.carriedSlots = recipe.state_passing() ? accum : 0; // the states stay on the device
      co.commTimeline = !o.commTimeline.empty();
      gpu = exec::CudaSession::open(plan, co, err);
      if (!gpu)
        return err;
      if (comm->size() > 1 || comm->name() == "torchrun") {
        // NCCL over the job's GPUs (a torchrun-style launch uses it even with one rank): rank 0's id reaches every rank through the launcher's
        // communicator (an all-reduce where only rank 0 contributes; the last value counts
        // failures, so every rank stops together).
        std::string id;
        std::vector<double> bytes(129, 0.0);
        if (lead) {
          err = exec::CudaSession::collectiveId(id);
          for (size_t i = 0; i < id.size() && i < 128; ++i)
            bytes[i] = double(static_cast<unsigned char>(id[i]));
          bytes[128] = err.empty() ? 0.0 : 1.0;
        }
        if (std::string e = comm->allReduceSum(bytes.data(), int64_t(bytes.size())); !e.empty())
          return e;
        if (bytes[128] != 0.0)
          return err.empty() ? "rank 0 could not set up NCCL" : err;
        id.assign(128, '\0');
        for (size_t i = 0; i < 128; ++i)
          id[i] = char(static_cast<unsigned char>(bytes[i]));
        if (std::string e = gpu->joinCollectives(id, comm->rank(), comm->size()); !e.empty())
          return e;
        out0 << "nccl        gradients averaged over " << comm->size() << " GPU(s) (launched by "
             << comm->name() << ")"
             << (gpu->overlapsReduction()
                     ? ", per bucket during the last micro-step's backward (NCCL stream)"
                     : ", after the micro-steps")
             << (zero ? ", AdamW state sharded over them (ZeRO-1)" : "") << "\n";
      }
    }
  }

  // Weights and AdamW moments: a checkpoint, HF weights, or the init program. With state
  // passing, each micro-batch slot carries its rows' states from step to step.
  TrainState<T> state;
  const bool statePassing = recipe.state_passing();
  // State passing: micro-batch slot a of this rank carries the states of global rows
  // (rank x accum + a) x rows + [0, rows), the rows the data loader gives it.
  std::vector<exec::NamedTensors<T>> slots;
  if (statePassing)
    slots.assign(size_t(accum), exec::freshStates<T>(*micro));
  const auto slotRow = [&](int64_t a) { return (int64_t(rank) * accum + a) * rows; };
  if (!o.resumeFrom.empty()) {
    if (std::string err = loadCheckpoint(plan, o.resumeFrom, state); !err.empty())
      return err;
    // The checkpoint holds every row in global order: this rank takes its own, however many
    // ranks wrote it.
    for (const auto &[name, all] : state.streams)
      for (int64_t a = 0; a < accum; ++a) {
        auto it = slots[size_t(a)].find(name);
        if (it == slots[size_t(a)].end())
          return o.resumeFrom + "/streams.safetensors: state '" + name +
                 "' is not one this plan carries";
        std::vector<T> &mine = it->second;
        const size_t perRow = mine.size() / size_t(rows);
        if (all.size() != size_t(global) * perRow)
          return o.resumeFrom + "/streams.safetensors: " + std::to_string(all.size() / perRow) +
                 " row streams, but this run's global batch is " + std::to_string(global) +
                 "; state passing continues every row, so resume with the global batch that wrote "
                 "it";
        std::copy_n(all.begin() + slotRow(a) * int64_t(perRow), mine.size(), mine.begin());
        slots[size_t(a)]["state:reset"].assign(1, T(0));
      }
    exec::NamedTensors<T>().swap(state.streams);
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
  // The CUDA backend keeps the carried states on the device from here on; the host copies in
  // `slots` are refreshed only before a save (gatherStreams).
  if constexpr (std::is_same_v<T, float>)
    for (int64_t a = 0; gpu && a < int64_t(slots.size()); ++a)
      if (std::string err = gpu->setCarried(a, slots[size_t(a)]); !err.empty())
        return err;
  // grads: the CPU apply step's view of the accumulators, swapped in and out (no storage).
  Weights<T> &params = state.params, &m = state.m, &v = state.v, grads(params.size());
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
    lo.rank = comm->rank();
    lo.worldSize = comm->size();
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
  if (!o.outputDir.empty() && lead) {
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
  out0 << "training " << plan.provenance()->model_name()->str()
      << (statePassing ? " (state passing)" : "") << ": " << steps << " steps x "
      << global << " sequences x " << seq << " tokens (accumulation " << accum << " x "
      << rows
      << (comm->size() > 1 ? " x " + std::to_string(comm->size()) + " ranks, " + comm->name() +
                                 (zero ? ", ZeRO-1" : "") +
                                 (o.overlapReduction ? ", reduced per bucket" : "")
                           : std::string())
      << "), "
      << (sizeof(T) == 8                                           ? "fp64"
          : plan.compiled()->precision() == plan::Precision::bf16 ? "bf16 matmuls"
                                                                   : "fp32")
      << ", backend " << o.backend << ", seed " << seed
      << "\n";

  // Parameters live in `named` (the programs read them by name); the optimizer updates them there.
  exec::NamedTensors<T> named;
  for (size_t i = 0; i < params.size(); ++i)
    named[names[i]] = std::move(params[i]);
  std::vector<std::vector<T> *> live;
  for (const std::string &n : names)
    live.push_back(&named[n]);
  exec::BackendRunner<T> runner(plan, *micro, o.backend);
  if constexpr (std::is_same_v<T, float>) {
    if (gpu) {
      std::vector<const std::vector<float> *> p(live.begin(), live.end()), mm, vv;
      for (size_t i = 0; i < names.size(); ++i)
        mm.push_back(&m[i]), vv.push_back(&v[i]);
      if (std::string e = gpu->setParams(p); !e.empty())
        return e;
      if (std::string e = gpu->setMoments(mm, vv); !e.empty())
        return e;
      const exec::CudaMemory mem = gpu->memory();
      out0 << "device      " << humanBytes(mem.total()) << " allocated (params + grads + moments "
           << humanBytes(mem.params + mem.grads + mem.moments) << ", checkpoints "
           << humanBytes(mem.checkpoints) << ", arena " << humanBytes(mem.arena)
           << (mem.bf16Params > 0 ? ", bf16 weights " + humanBytes(mem.bf16Params) : std::string())
           << (mem.carried > 0 ? ", carried states " + humanBytes(mem.carried) : std::string())
           << "), " << (gpu->bf16() ? "bf16 matmuls" : "fp32 matmuls (no TF32)")
           << (o.cudaGraphs ? ", CUDA graphs" : ", no graphs") << "\n";
    }
  }
  // ZeRO-1 on the CPU backend: this rank keeps the moments of its slice of the flat parameter
  // space (every parameter in table order) and updates only that slice; the CUDA session does
  // the same on the device. The full moments exist only while a checkpoint is written.
  std::vector<int64_t> flatOffset{0};
  for (const std::string &n : names)
    flatOffset.push_back(flatOffset.back() + int64_t(named[n].size()));
  const dist::ShardLayout shard = dist::shardLayout(flatOffset.back(), zero ? ranks : 1);
  const int64_t sliceBegin = shard.begin(zero ? rank : 0), sliceEnd = shard.end(zero ? rank : 0);
  auto pieces = [&](size_t i, auto &&fn) {
    const int64_t lo = std::max(flatOffset[i], sliceBegin);
    const int64_t hi = std::min(flatOffset[i + 1], sliceEnd);
    if (lo < hi)
      fn(lo - flatOffset[i], lo - sliceBegin, hi - lo);
  };
  const bool cpuZero = zero && !gpu;
  // Several CPU ranks: each bucket is summed as the last micro-step's backward closes it (MPI's
  // non-blocking collectives, finished after the micro-step), the CUDA session's scheme.
  const bool cpuOverlap = !gpu && ranks > 1 && o.overlapReduction;
  std::vector<T> flat, gSlice, mSlice, vSlice; // flat: the whole space (padded), for collectives
  if (cpuZero || cpuOverlap)
    flat.assign(size_t(shard.padded()), T(0));
  if (cpuZero) {
    gSlice.assign(size_t(shard.perRank), T(0));
    mSlice = gSlice;
    vSlice = gSlice;
    for (size_t i = 0; i < names.size(); ++i)
      pieces(i, [&](int64_t at, int64_t s, int64_t n) {
        std::copy_n(m[i].begin() + at, n, mSlice.begin() + s);
        std::copy_n(v[i].begin() + at, n, vSlice.begin() + s);
      });
  }
  if (zero) { // the device (setMoments above) or the slices hold them now
    Weights<T>().swap(m);
    Weights<T>().swap(v);
  }
  // ZeRO-1: the moment slices meet on rank 0 before a checkpoint (a collective: every rank calls
  // it); the full moments are freed again after the save.
  auto gatherMoments = [&]() -> std::string {
    if (!zero)
      return "";
    if (lead) {
      m.assign(names.size(), {});
      v.assign(names.size(), {});
    }
    if constexpr (std::is_same_v<T, float>) {
      if (gpu) {
        std::vector<std::vector<float> *> mm, vv;
        for (size_t i = 0; i < names.size() && lead; ++i)
          mm.push_back(&m[i]), vv.push_back(&v[i]);
        return gpu->getMoments(mm, vv);
      }
    }
    std::vector<T> all(lead ? size_t(shard.padded()) : 0);
    for (auto [slice, full] : {std::pair{&mSlice, &m}, std::pair{&vSlice, &v}}) {
      if (std::string err = comm->gatherToRoot(slice->data(), all.data(), shard.perRank);
          !err.empty())
        return err;
      for (size_t i = 0; i < names.size() && lead; ++i)
        (*full)[i].assign(all.begin() + flatOffset[i], all.begin() + flatOffset[i + 1]);
    }
    return "";
  };
  // Host copies of what the device holds, before a checkpoint is written.
  auto pullFromDevice = [&]() -> std::string {
    if constexpr (std::is_same_v<T, float>) {
      if (!gpu)
        return "";
      std::vector<std::vector<float> *> p(live.begin(), live.end()), mm, vv;
      for (size_t i = 0; i < names.size(); ++i)
        mm.push_back(&m[i]), vv.push_back(&v[i]);
      std::string err = gpu->getParams(p);
      return err.empty() && !zero ? gpu->getMoments(mm, vv) : err;
    }
    return "";
  };
  // micro_step adds each gradient / accum into its accumulator as soon as it is final.
  exec::NamedTensors<T> accumulators; // on the CUDA backend the device holds them
  for (const std::string &n : names)
    if (!gpu)
      accumulators[n].assign(named[n].size(), T(0));
  exec::GradientSink<T> sink{&accumulators, 1.0 / double(accum), nullptr};
  // The per-bucket reduction (cpuOverlap): a bucket's final gradients are copied into `flat` and
  // their sums started there (with ZeRO-1 each piece to its slice's owner only).
  std::map<std::string, size_t> indexOf;
  for (size_t i = 0; i < names.size(); ++i)
    indexOf[names[i]] = i;
  std::vector<char> bucketed(names.size(), 0);
  std::string bucketErr;
  auto reduceBucket = [&](int64_t, const std::vector<std::string> &members) {
    std::vector<std::pair<int64_t, int64_t>> slots;
    for (const std::string &name : members) {
      auto it = indexOf.find(name);
      if (it == indexOf.end()) {
        bucketErr = "bucket_ready: unknown parameter '" + name + "'";
        return;
      }
      const size_t i = it->second;
      const std::vector<T> &g = accumulators[name];
      std::copy(g.begin(), g.end(), flat.begin() + flatOffset[i]);
      slots.push_back({flatOffset[i], flatOffset[i + 1]});
      bucketed[i] = 1;
    }
    for (const dist::BucketPiece &p : dist::bucketPieces(slots, cpuZero ? &shard : nullptr)) {
      T *at = flat.data() + p.begin;
      std::string err = p.owner < 0 ? comm->startAllReduceSum(at, p.end - p.begin)
                                    : comm->startReduceSum(at, p.end - p.begin, p.owner);
      if (bucketErr.empty())
        bucketErr = err;
    }
  };
  exec::NamedTensors<T> out;
  exec::NamedInts inputs;

  const auto start = std::chrono::steady_clock::now();
  const int64_t firstStep = state.step;
  data::Batch batch;
  StopSignals signals;
  StepWatchdog watchdog(comm->size() > 1 ? o.stepTimeout : 0.0, comm->rank());
  // State passing: every slot's rows meet on rank 0 in global row order before a save (a
  // collective: every rank calls it); state.streams is freed again after the save.
  auto gatherStreams = [&]() -> std::string {
    if (!statePassing)
      return "";
    if constexpr (std::is_same_v<T, float>)
      for (int64_t a = 0; gpu && a < int64_t(slots.size()); ++a)
        if (std::string err = gpu->getCarried(a, slots[size_t(a)]); !err.empty())
          return err;
    for (const auto &entry : slots[0]) {
      const std::string &name = entry.first;
      if (name == "state:reset")
        continue;
      std::vector<T> mine;
      for (const exec::NamedTensors<T> &slot : slots)
        mine.insert(mine.end(), slot.at(name).begin(), slot.at(name).end());
      std::vector<T> all(lead ? mine.size() * size_t(ranks) : 0);
      if (std::string err = comm->gatherToRoot(mine.data(), all.data(), int64_t(mine.size()));
          !err.empty())
        return err;
      if (lead)
        state.streams[name] = std::move(all);
    }
    return "";
  };
  // Its thread reads only the plan and what each write is given (a snapshot, copies).
  CheckpointWriter writer;
  // The write in flight (rank 0), if any, to its end when `wait` or once it has ended: "saved DIR"
  // on the log, or its error, known to rank 0 only (`agreed` or the step's stop flags tell the
  // other ranks).
  auto finishWrite = [&](bool wait) -> std::string {
    std::vector<std::string> dirs;
    std::string err = wait || writer.finished() ? writer.wait(&dirs) : "";
    for (const std::string &dir : dirs)
      log << "saved " << dir << "\n" << std::flush;
    return err;
  };
  // Once the ranks have agreed that rank 0's write failed: what each of them returns.
  auto writeFailed = [&](const std::string &err) -> std::string {
    return lead ? err : "rank 0 could not write a checkpoint (its error says why); stopping";
  };
  // finishWrite's error agreed on by every rank (a collective: every rank calls it).
  auto agreed = [&](const std::string &err) -> std::string {
    double failed = err.empty() ? 0.0 : 1.0;
    if (comm->size() > 1)
      if (std::string e = comm->allReduceSum(&failed, 1); !e.empty())
        return e;
    return failed > 0 ? writeFailed(err) : "";
  };
  // Checkpoints (OUT/<name> each) of the state after state.step steps, from one snapshot.
  // background: written while training goes on (the periodic saves); otherwise finished before
  // it returns (a stop, the end, a bad step).
  auto save = [&](const std::vector<std::string> &saves, bool background = false) -> std::string {
    if (o.outputDir.empty())
      return "";
    if (std::string err = agreed(finishWrite(true)); !err.empty()) // the previous write first
      return err;
    if (std::string err = gatherMoments(); !err.empty())
      return err;
    if (std::string err = gatherStreams(); !err.empty())
      return err;
    if (lead) { // one copy of each checkpoint, written by rank 0
      if (std::string err = pullFromDevice(); !err.empty())
        return err;
      // The snapshot: the weights copied; the moments moved where the host holds only copies
      // (gathered ZeRO-1 slices, or pulled from the device), copied where the CPU steps update
      // them.
      auto snap = std::make_shared<TrainState<T>>();
      for (size_t i = 0; i < names.size(); ++i)
        snap->params.push_back(*live[i]);
      const bool hostCopies = zero || gpu;
      for (auto [from, to] : {std::pair{&m, &snap->m}, std::pair{&v, &snap->v}})
        for (std::vector<T> &x : *from) {
          if (hostCopies)
            to->push_back(std::move(x));
          else
            to->push_back(x);
        }
      if (zero) {
        Weights<T>().swap(m);
        Weights<T>().swap(v);
      }
      snap->streams.swap(state.streams);
      snap->step = state.step;
      snap->dataCursor = cursorNow();
      snap->args = state.args;
      std::vector<std::string> dirs;
      bool prune = false;
      for (const std::string &name : saves) {
        dirs.push_back(o.outputDir + "/" + name);
        prune |= name.rfind("checkpoint-", 0) == 0;
      }
      auto write = [&plan, snap, tokenizerPath, dirs, prune, outputDir = o.outputDir,
                    keep = o.keepCheckpoints]() -> std::string {
        for (const std::string &dir : dirs)
          if (std::string err = saveCheckpoint(plan, *snap, tokenizerPath, dir); !err.empty())
            return err;
        if (prune)
          pruneCheckpoints(outputDir, keep);
        return "";
      };
      writer.start(dirs, std::move(write));
    }
    if (!background)
      if (std::string err = agreed(finishWrite(true)); !err.empty())
        return err;
    return comm->barrier();
  };
  if (!o.commTimeline.empty()) {
    bool perBucket = false;
    if constexpr (std::is_same_v<T, float>)
      perBucket = gpu && gpu->overlapsReduction();
    if (!perBucket)
      return "--comm-timeline times the gradient reduction per bucket: it needs --backend cuda "
             "with several ranks (or a torchrun launch) and without --no-overlap";
  }
  // --comm-timeline: the second step of the run (the first warms up), or its only one.
  const int64_t timelineStep = std::min(state.step + 1, steps - 1);
  for (int64_t step = state.step; step < steps; ++step) {
    watchdog.beat(step + 1);
    if (!gpu)
      for (auto &[name, g] : accumulators)
        std::fill(g.begin(), g.end(), T(0));
    double loss = 0;
    if (fileRows) {
      // this rank's slice of the step's global batch, as the data loader gives it
      const int64_t first = (step * global) % fileRows + slotRow(0), n = accum * rows;
      auto rowsOf = [&](const std::vector<int32_t> &x) {
        return std::vector<int32_t>(x.begin() + first * seq, x.begin() + (first + n) * seq);
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
    std::fill(bucketed.begin(), bucketed.end(), 0);
    for (int64_t a = 0; a < accum; ++a) {
      if (cpuOverlap && a + 1 == accum)
        sink.onBucketReady = reduceBucket;
      else
        sink.onBucketReady = nullptr;
      auto begin = [&](const std::vector<int32_t> &x) { return x.begin() + a * rows * seq; };
      inputs["tokens"].assign(begin(batch.inputs), begin(batch.inputs) + rows * seq);
      inputs["targets"].assign(begin(batch.targets), begin(batch.targets) + rows * seq);
      exec::NamedTensors<T> *streams = statePassing ? &slots[size_t(a)] : nullptr;
      if (streams && batch.streamsReset)
        (*streams)["state:reset"].assign(1, T(1));
      std::string runErr;
      if constexpr (std::is_same_v<T, float>)
        runErr = gpu ? gpu->run("micro_step", inputs, streams, out, 1.0 / double(accum),
                                a + 1 == accum, streams ? a : -1)
                     : runner.run(named, inputs, out, &sink, streams);
      else
        runErr = runner.run(named, inputs, out, &sink, streams);
      if (!runErr.empty())
        return runErr;
      if (streams) {
        // The final states become the next step's initial ones, without gradient.
        for (auto &[name, values] : out)
          if (name.rfind("state_out:", 0) == 0)
            (*streams)["state:" + name.substr(10)].swap(values);
        (*streams)["state:reset"].assign(1, T(0));
      }
      loss += double(out.at("loss").at(0)) / double(accum);
    }
    if constexpr (std::is_same_v<T, float>) {
      if (gpu && (comm->size() > 1 || comm->name() == "torchrun"))
        if (std::string err = gpu->averageGrads(); !err.empty())
          return err;
      if (gpu && lead && !o.commTimeline.empty() && step == timelineStep) {
        dist::CommTimeline t = gpu->commTimeline();
        t.step = step + 1;
        t.rank = comm->rank();
        t.ranks = comm->size();
        std::ofstream f(o.commTimeline);
        f << t.chromeTrace();
        if (!f)
          return o.commTimeline + ": cannot write the comm timeline (--comm-timeline)";
        log << t.summary(o.commTimeline) << "\n" << std::flush;
      }
    }
    if (comm->size() > 1) {
      // Data parallel: the global batch's mean loss and gradient are the ranks' means averaged
      // (on the GPU by NCCL, in place in the device's gradient region, above).
      const T inv = T(1.0 / comm->size());
      if (cpuOverlap) {
        // The buckets' sums started during the last micro-step; every parameter is in one.
        std::string err = comm->waitAll();
        if (err.empty())
          err = bucketErr;
        for (size_t i = 0; i < names.size() && err.empty(); ++i)
          if (!bucketed[i])
            err = "the plan's micro_step puts the gradient of " + names[i] +
                  " in no bucket_ready; recompile it with this tttc (or run with --no-overlap)";
        if (!err.empty())
          return err;
        if (cpuZero)
          for (int64_t k = 0; k < shard.perRank; ++k)
            gSlice[size_t(k)] = flat[size_t(sliceBegin + k)] * inv;
        else
          for (size_t i = 0; i < names.size(); ++i)
            std::transform(flat.begin() + flatOffset[i], flat.begin() + flatOffset[i + 1],
                           accumulators[names[i]].begin(), [inv](T x) { return x * inv; });
      } else if (cpuZero) {
        // ZeRO-1: this rank needs the average of its slice only.
        for (size_t i = 0; i < names.size(); ++i)
          std::copy(accumulators[names[i]].begin(), accumulators[names[i]].end(),
                    flat.begin() + flatOffset[i]);
        if (std::string err = comm->reduceScatterSum(flat.data(), gSlice.data(), shard.perRank);
            !err.empty())
          return err;
        for (T &x : gSlice)
          x *= inv;
      }
      for (const std::string &n : names) {
        if (gpu || cpuZero || cpuOverlap)
          break;
        std::vector<T> &g = accumulators[n];
        if (std::string err = comm->allReduceSum(g.data(), int64_t(g.size())); !err.empty())
          return err;
        for (T &x : g)
          x *= inv;
      }
      if (std::string err = comm->allReduceSum(&loss, 1); !err.empty())
        return err;
      loss /= comm->size();
    }
    if (!std::isfinite(loss))
      return "step " + std::to_string(step + 1) + ": the loss is " + std::to_string(loss) +
             "; stopping (" + (save({"checkpoint-" + std::to_string(step)}).empty()
                                   ? "the state before this step is saved"
                                   : "no checkpoint could be written") + ")";
    // ZeRO-1: every rank's sum of squares of its slice and its first parameter with a
    // non-finite gradient, one all-reduce (each rank adds zeros outside its own entries: exact),
    // then the global sum in rank order: the same norm on every rank, on every run.
    double sliceSumSquares = 0;
    size_t badParam = names.size();
    if (cpuZero) {
      std::vector<double> shared(size_t(2 * ranks), 0.0);
      shared[size_t(rank)] = cpu::sumSquares<T>(gSlice.data(), shard.perRank);
      for (size_t i = names.size(); i-- > 0;)
        pieces(i, [&](int64_t, int64_t s, int64_t n) {
          if (!std::all_of(gSlice.begin() + s, gSlice.begin() + s + n,
                           [](T g) { return std::isfinite(double(g)); }))
            shared[size_t(ranks + rank)] = double(i + 1);
        });
      if (std::string err = comm->allReduceSum(shared.data(), int64_t(shared.size()));
          !err.empty())
        return err;
      for (int r = 0; r < ranks; ++r) {
        sliceSumSquares += shared[size_t(r)];
        if (badParam == names.size() && shared[size_t(ranks + r)] > 0)
          badParam = size_t(shared[size_t(ranks + r)]) - 1;
      }
    }
    for (size_t i = 0; i < names.size() && !gpu; ++i) {
      const std::vector<T> &g = accumulators[names[i]];
      if (cpuZero ? i == badParam
                  : !std::all_of(g.begin(), g.end(), [](T x) { return std::isfinite(double(x)); }))
        return "step " + std::to_string(step + 1) + ": the gradient of " + names[i] +
               " is not finite; stopping (" +
               (save({"checkpoint-" + std::to_string(step)}).empty()
                    ? "the state before this step is saved"
                    : "no checkpoint could be written") + ")";
    }
    // The optimizer's own count starts at 0, so the first update uses lr(0) (0 with warmup),
    // exactly like the reference (optax); see docs/training.md.
    double lr = cpu::warmupCosineLr(step, sched.peak, sched.end, sched.warmup, sched.total);
    double gradNorm = 0;
    if (gpu) {
      // A non-finite gradient leaves the weights and moments as they were (the device checks the
      // global norm before updating), so the state before this step is what gets saved.
      if (std::string err = gpu->applyStep(step + 1, lr, weightDecay, gradNorm); !err.empty())
        return err;
      if (!std::isfinite(gradNorm))
        return "step " + std::to_string(step + 1) + ": the gradient norm is " +
               std::to_string(gradNorm) + "; stopping (" +
               (save({"checkpoint-" + std::to_string(step)}).empty()
                    ? "the state before this step is saved"
                    : "no checkpoint could be written") + ")";
    } else if (cpuZero) {
      if (std::string err = applyStepSlice(*apply, live, gSlice.data(), mSlice.data(),
                                           vSlice.data(), sliceSumSquares, pieces, step + 1, lr,
                                           weightDecay, gradNorm);
          !err.empty())
        return err;
      // Every rank's updated slice to every rank: the full weights everywhere again.
      for (size_t i = 0; i < names.size(); ++i)
        pieces(i, [&](int64_t at, int64_t s, int64_t n) {
          std::copy_n(live[i]->begin() + at, n, gSlice.begin() + s);
        });
      if (std::string err = comm->allGather(gSlice.data(), flat.data(), shard.perRank);
          !err.empty())
        return err;
      for (size_t i = 0; i < names.size(); ++i)
        std::copy(flat.begin() + flatOffset[i], flat.begin() + flatOffset[i + 1], live[i]->begin());
    } else {
      for (size_t i = 0; i < names.size(); ++i)
        grads[i].swap(accumulators[names[i]]);
      std::string applyErr = applyStep(*apply, live, grads, m, v, step + 1, lr, weightDecay, gradNorm);
      for (size_t i = 0; i < names.size(); ++i)
        grads[i].swap(accumulators[names[i]]);
      if (!applyErr.empty())
        return applyErr;
    }
    state.step = step + 1;
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double tokens = double(step + 1 - firstStep) * double(global * seq);
    double eta = seconds / double(step + 1 - firstStep) * double(steps - step - 1);
    out0 << "step " << std::setw(5) << step + 1 << "/" << steps << "  loss " << std::fixed
        << std::setprecision(4) << loss << "  grad_norm " << std::setprecision(3) << gradNorm
        << "  lr " << std::scientific << std::setprecision(2) << lr << std::defaultfloat
        << "  " << std::setprecision(0) << std::fixed << tokens / seconds << " tok/s  "
        << std::setprecision(3) << tokens / seconds * flopsPerToken / 1e12 << " TFLOP/s";
    if (peakFlops > 0)
      out0 << "  mfu " << std::setprecision(1) << 100 * tokens / seconds * flopsPerToken / peakFlops
           << "%";
    out0 << "  " << std::setprecision(1) << seconds << " s  eta " << std::setprecision(0) << eta << " s  mem "
        << humanBytes(gpu ? gpu->deviceBytesInUse() : peakRssBytes())
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
    if (o.evalEvery > 0 && state.step % o.evalEvery == 0) {
      double valLoss = 0;
      int64_t valTokens = 0;
      if (std::string err = validate<T>(plan, o, named, valLoss, valTokens, gpu.get()); !err.empty())
        return err;
      out0 << "eval  step " << state.step << "  val_loss " << std::fixed << std::setprecision(4)
          << valLoss << "  val_ppl " << std::setprecision(2) << std::exp(valLoss) << "  ("
          << valTokens << " tokens)" << std::defaultfloat << std::setprecision(6) << "\n";
      if (jsonl)
        jsonl << nlohmann::json{{"step", state.step}, {"val_loss", valLoss},
                                {"val_ppl", std::exp(valLoss)}, {"val_tokens", valTokens}}
                     .dump()
              << "\n";
      if (events) {
        double wall = std::chrono::duration<double>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
        events->scalar("val_loss", state.step, valLoss, wall);
        events->scalar("val_ppl", state.step, std::exp(valLoss), wall);
      }
    }
    std::vector<std::string> due; // both from one snapshot when a milestone is also a checkpoint
    if (state.step % milestoneEvery == 0 && state.step < steps)
      due.push_back("milestone-" + std::to_string(state.step));
    if (state.step % saveEvery == 0 && state.step < steps)
      due.push_back("checkpoint-" + std::to_string(state.step));
    if (!due.empty())
      if (std::string err = save(due, true); !err.empty())
        return err;
    // A background write that has ended: its line, or its error (which stops every rank).
    const std::string writeErr = finishWrite(false);
    // A signal or the --max-minutes limit on any rank stops every rank after this step, and so
    // does a failed write (one all-reduce for the three).
    double stop[3] = {signals.stopRequested() ? 1.0 : 0.0,
                      o.maxMinutes > 0 && std::chrono::duration<double>(
                                              std::chrono::steady_clock::now() - start)
                                                  .count() >= o.maxMinutes * 60
                          ? 1.0
                          : 0.0,
                      writeErr.empty() ? 0.0 : 1.0};
    if (comm->size() > 1)
      if (std::string err = comm->allReduceSum(stop, 3); !err.empty())
        return err;
    if (stop[2] > 0)
      return writeFailed(writeErr);
    if (stop[0] > 0 || stop[1] > 0) {
      std::ostringstream why;
      if (stop[0] > 0)
        why << "signal " << signals.which();
      else
        why << "the --max-minutes limit of " << o.maxMinutes << " min";
      out0 << "stopping after step " << state.step << " (" << why.str() << ")\n";
      if (o.outputDir.empty())
        return "";
      return save({"checkpoint-" + std::to_string(state.step)});
    }
  }
  return save({"final_model"});
}
} // namespace

PlanMemory planMemory(const plan::Plan &plan, int ranks, bool zero) {
  PlanMemory m;
  if (!plan.memory() || plan.memory()->size() == 0)
    return m;
  const plan::ProgramMemory *m0 = plan.memory()->Get(0);
  for (const plan::ProgramMemory *p : *plan.memory()) {
    m.arena = std::max(m.arena, double(p->arena_bytes()));
    m.checkpoints = std::max(m.checkpoints, double(p->checkpoints_bytes()));
  }
  m.shards = zero && ranks > 1 ? ranks : 1;
  // The moments region is two parameter-sized halves (m, v): each rank keeps its slice of both.
  const dist::ShardLayout slice = dist::shardLayout(int64_t(m0->params_bytes()), m.shards, 256);
  m.params = double(slice.padded());
  m.grads = double(m0->grads_bytes()) + double(slice.padded() - int64_t(m0->params_bytes()));
  m.fullMoments = double(m0->moments_bytes());
  m.moments = m.shards > 1 ? 2.0 * double(slice.perRank) : m.fullMoments;
  double perRow = 0;
  for (const auto &[name, shape] : carriedStateShapes(plan)) {
    double n = 1;
    for (int64_t d : shape)
      n *= double(d);
    perRow += n;
  }
  const double elementBytes = plan.compiled()->precision() == plan::Precision::fp64 ? 8 : 4;
  m.carried = perRow * elementBytes * double(plan.recipe()->global_batch() / std::max(ranks, 1));
  return m;
}

double modelFlopsPerToken(const plan::Plan &plan) {
  double flops = 0;
  for (const plan::Parameter *p : *plan.parameters()) {
    double n = 1;
    for (int64_t d : *p->shape())
      n *= double(d);
    flops += 6 * n;
  }
  return flops;
}

std::string dryRun(const plan::Plan &plan, const TrainOptions &o, std::ostream &log) {
  BatchMath b;
  std::string commErr;
  auto comm = dist::openCommunicator(commErr);
  if (!comm)
    return commErr;
  if (o.ranks && *o.ranks < 1)
    return "--ranks " + std::to_string(*o.ranks) + ": at least 1";
  if (o.ranks && comm->size() > 1 && *o.ranks != comm->size())
    return "--ranks " + std::to_string(*o.ranks) + " contradicts the launch's " +
           std::to_string(comm->size()) + " ranks; drop --ranks under mpirun/srun/torchrun";
  if (o.zero != 0 && o.zero != 1)
    return "--zero must be 0 or 1 (1: the AdamW state sharded over the ranks, ZeRO-1; 0: a "
           "full copy on every rank), not " + std::to_string(o.zero);
  const int ranks = o.ranks.value_or(comm->size());
  if (std::string err = resolveBatch(plan, o, ranks, b); !err.empty())
    return err;
  const double tokensPerStep = double(b.global) * double(b.seq);
  log << "plan        " << plan.provenance()->model_name()->str() << ", "
      << (plan.compiled()->precision() == plan::Precision::fp64   ? "fp64"
          : plan.compiled()->precision() == plan::Precision::fp32 ? "fp32"
                                                                  : "bf16")
      << ", state passing " << (plan.recipe()->state_passing() ? "on" : "off") << "\n"
      << "batch       global " << b.global << " sequences = per-device " << b.rows << " x "
      << b.ranks << " rank(s) x accumulation " << b.accum << "\n"
      << "tokens      " << std::fixed << std::setprecision(0) << tokensPerStep << " per step x "
      << b.steps << " steps = " << tokensPerStep * double(b.steps) << std::defaultfloat
      << std::setprecision(6) << "\n"
      << "schedule    AdamW, lr " << b.sched.peak << " (warmup " << b.sched.warmup
      << ", cosine to " << b.sched.end << " at " << b.sched.total << "), weight decay "
      << b.weightDecay << ", seed " << b.seed << "\n";
  // Device memory per rank from the plan's memory map: parameters, gradients, moments (one
  // rank's slice with ZeRO-1), checkpoints and the largest program arena.
  if (const PlanMemory m = planMemory(plan, ranks, o.zero == 1); m.total() > 0) {
    log << "memory      " << humanBytes(m.total()) << " per device: params "
        << humanBytes(m.params) << ", grads " << humanBytes(m.grads) << ", AdamW moments "
        << humanBytes(m.moments);
    if (m.shards > 1)
      log << " (ZeRO-1: " << humanBytes(m.fullMoments) << " over " << m.shards << " ranks)";
    log << ", checkpoints + arena " << humanBytes(m.checkpoints + m.arena);
    if (const double cache = exec::innerLoopCacheBytes(plan); cache > 0)
      log << " (of which the inner-loop cache " << humanBytes(cache)
          << ": tttc --no-inner-loop-cache leaves it out)";
    if (m.carried > 0)
      log << ", carried states " << humanBytes(m.carried);
    log << "\n";
    if (m.shards > 1)
      log << "            without ZeRO-1 (--zero 0): "
          << humanBytes(planMemory(plan, ranks, false).total()) << " per device\n";
  } else {
    log << "memory      (the plan has no memory map; recompile it with this tttc)\n";
  }
  return "";
}

std::string evaluate(const plan::Plan &plan, const TrainOptions &o, std::ostream &log) {
  auto run = [&](auto zero) -> std::string {
    using T = decltype(zero);
    exec::Weights<T> w;
    std::string err;
    if (!o.resumeFrom.empty()) {
      TrainState<T> st;
      err = loadCheckpoint(plan, o.resumeFrom, st, /*streams=*/false);
      w = std::move(st.params);
    } else {
      err = o.weights.empty() ? exec::initWeights(plan, o.seed.value_or(plan.recipe()->seed()), w)
                              : exec::loadWeights(plan, o.weights, w);
    }
    if (!err.empty())
      return err;
    exec::NamedTensors<T> named;
    for (size_t i = 0; i < w.size(); ++i)
      named[plan.parameters()->Get(i)->name()->str()] = std::move(w[i]);
    double loss = 0;
    int64_t tokens = 0;
    if (std::string e = validate<T>(plan, o, named, loss, tokens); !e.empty())
      return e;
    log << "{\"val_loss\": " << std::setprecision(17) << loss << ", \"val_ppl\": " << std::exp(loss)
        << ", \"val_tokens\": " << tokens << "}\n";
    return "";
  };
  return plan.compiled()->precision() == plan::Precision::fp64 ? run(double(0)) : run(float(0));
}

std::string train(const plan::Plan &plan, const TrainOptions &options, std::ostream &log) {
  if (plan.compiled()->precision() == plan::Precision::fp64)
    return run<double>(plan, options, log);
  return run<float>(plan, options, log);
}
} // namespace ttt::train
