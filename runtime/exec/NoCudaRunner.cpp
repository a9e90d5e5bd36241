// The CUDA runner in a build without CUDA (TTT_HAVE_CUDA off): the class exists so callers need
// no #ifdef; BackendRunner never constructs it here (cudaBackendAvailable() is false).
#include "runtime/exec/CudaRunner.h"

namespace ttt::exec {
bool cudaBackendAvailable() { return false; }

struct CudaProgramRunner::State {};

CudaProgramRunner::CudaProgramRunner(const plan::Program &) {}
CudaProgramRunner::~CudaProgramRunner() = default;

std::string CudaProgramRunner::run(const NamedTensors<float> &, const NamedInts &,
                                   NamedTensors<float> &, const GradientSink<float> *,
                                   const NamedTensors<float> *) {
  return "this ttt-run was built without CUDA; use --backend cpu";
}
} // namespace ttt::exec
