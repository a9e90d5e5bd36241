// Runs one plan program on the CUDA backend with the interface of exec::ProgramRunner<float>
// (Interpreter.h), for callers that keep parameters on the host (`--loss`, `--save-grads`,
// evaluation): a CudaSession (CudaSession.h) whose parameters are uploaded at each run and whose
// gradient accumulators are copied in before and back after it; bucket hooks run after the
// program, in order. Training keeps everything on the device and uses CudaSession directly.
//
// In a build without CUDA the class exists too; every run answers that the backend is missing.
#pragma once

#include "runtime/exec/Interpreter.h"

#include <memory>
#include <string>

namespace ttt::exec {
/// True when this build has the CUDA backend (a GPU may still be missing at run time).
bool cudaBackendAvailable();

class CudaProgramRunner {
public:
  CudaProgramRunner(const plan::Plan &plan, const plan::Program &program);
  ~CudaProgramRunner();
  CudaProgramRunner(const CudaProgramRunner &) = delete;
  CudaProgramRunner &operator=(const CudaProgramRunner &) = delete;
  /// As ProgramRunner<float>::run: "" or a one-line error.
  std::string run(const NamedTensors<float> &params, const NamedInts &inputs,
                  NamedTensors<float> &outputs, const GradientSink<float> *gradients = nullptr,
                  const NamedTensors<float> *states = nullptr);

private:
  struct State;
  std::unique_ptr<State> state_;
};

/// A runner of either backend, for callers that pick one by name ("cpu" or "cuda"). fp64 plans
/// run on the CPU only.
template <typename T> class BackendRunner {
public:
  BackendRunner(const plan::Plan &plan, const plan::Program &program, const std::string &backend) {
    if (backend == "cpu")
      cpu_ = std::make_unique<ProgramRunner<T>>(program);
    else if (backend != "cuda")
      error_ = "unknown backend '" + backend + "' (cpu | cuda)";
    else if (!cudaBackendAvailable())
      error_ = "this ttt-run was built without CUDA; use --backend cpu";
    else if (sizeof(T) != sizeof(float))
      error_ = "the CUDA backend runs fp32 plans; compile with --precision fp32 or use --backend cpu";
    else
      cuda_ = std::make_unique<CudaProgramRunner>(plan, program);
  }
  std::string run(const NamedTensors<T> &params, const NamedInts &inputs,
                  NamedTensors<T> &outputs, const GradientSink<T> *gradients = nullptr,
                  const NamedTensors<T> *states = nullptr) {
    if (!error_.empty())
      return error_;
    if (cpu_)
      return cpu_->run(params, inputs, outputs, gradients, states);
    if constexpr (sizeof(T) == sizeof(float))
      return cuda_->run(params, inputs, outputs, gradients, states);
    return error_;
  }

private:
  std::string error_;
  std::unique_ptr<ProgramRunner<T>> cpu_;
  std::unique_ptr<CudaProgramRunner> cuda_;
};
} // namespace ttt::exec
