// Executes a plan program (eval_step, ...) on the CPU backend: one kernel call per instruction,
// one host buffer per tensor. The reference executor; the CUDA backend replaces it with graphs.
#pragma once

#include "ttt/schema/plan_generated.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ttt::exec {
/// Parameter values by full name (our layout), batch inputs by name.
template <typename T> using NamedTensors = std::map<std::string, std::vector<T>>;
using NamedInts = std::map<std::string, std::vector<int32_t>>;

/// Where micro_step's gradients go: `accumulators[name] += scale * grad` at each
/// accumulate_grad, and `onBucketReady` at each reduction point (data parallelism hooks in there).
template <typename T> struct GradientSink {
  NamedTensors<T> *accumulators = nullptr;
  double scale = 1.0;
  std::function<void(int64_t bucket, const std::vector<std::string> &params)> onBucketReady;
};

/// Runs `program` again and again, keeping its buffers between runs (training steps reuse
/// every allocation). Parameters are read by name from `params` (not copied).
template <typename T> class ProgramRunner {
public:
  explicit ProgramRunner(const plan::Program &program);
  ~ProgramRunner();
  /// Fills `outputs` with the program's named results. "" or a one-line error.
  /// `states`: float inputs (state passing's "state:<name>"), if the program has any.
  std::string run(const NamedTensors<T> &params, const NamedInts &inputs,
                  NamedTensors<T> &outputs, const GradientSink<T> *gradients = nullptr,
                  const NamedTensors<T> *states = nullptr);

private:
  struct State;
  State *state_;
};

/// One run of `program` (a ProgramRunner used once).
template <typename T>
std::string runProgram(const plan::Program &program, const NamedTensors<T> &params,
                       const NamedInts &inputs, NamedTensors<T> &outputs,
                       const GradientSink<T> *gradients = nullptr,
                       const NamedTensors<T> *states = nullptr);

/// The float inputs of a program as at the start of streams: zeros, and "state:reset" = 1.
template <typename T> NamedTensors<T> freshStates(const plan::Program &program);

/// The program called `name` in the plan, or null.
const plan::Program *findProgram(const plan::Plan &plan, const std::string &name);

/// Bytes of micro_step's inner-loop cache (the 6th results of its inner_loop_fwd, f32; tttc
/// --no-inner-loop-cache leaves them out); 0 without one.
double innerLoopCacheBytes(const plan::Plan &plan);
} // namespace ttt::exec
