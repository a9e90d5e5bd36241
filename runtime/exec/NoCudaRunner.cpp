// The CUDA executor in a build without CUDA (TTT_HAVE_CUDA off): the classes exist so callers need
// no #ifdef; CudaSession::open and every run answer that the backend is missing.
#include "runtime/exec/CudaRunner.h"
#include "runtime/exec/CudaSession.h"

namespace ttt::exec {
namespace {
const char *kMissing = "this ttt-run was built without CUDA; use --backend cpu";
} // namespace

bool cudaBackendAvailable() { return false; }

struct CudaProgramRunner::State {};

CudaProgramRunner::CudaProgramRunner(const plan::Plan &, const plan::Program &) {}
CudaProgramRunner::~CudaProgramRunner() = default;

std::string CudaProgramRunner::run(const NamedTensors<float> &, const NamedInts &,
                                   NamedTensors<float> &, const GradientSink<float> *,
                                   const NamedTensors<float> *) {
  return kMissing;
}

struct CudaSession::Impl {};
CudaSession::CudaSession() = default;
CudaSession::~CudaSession() = default;
std::unique_ptr<CudaSession> CudaSession::open(const plan::Plan &, const CudaOptions &,
                                               std::string &error) {
  error = kMissing;
  return nullptr;
}
std::string CudaSession::setParams(const std::vector<const std::vector<float> *> &) { return kMissing; }
std::string CudaSession::getParams(std::vector<std::vector<float> *> &) { return kMissing; }
std::string CudaSession::setMoments(const std::vector<const std::vector<float> *> &,
                                    const std::vector<const std::vector<float> *> &) {
  return kMissing;
}
std::string CudaSession::getMoments(std::vector<std::vector<float> *> &,
                                    std::vector<std::vector<float> *> &) {
  return kMissing;
}
std::string CudaSession::setGrads(const std::vector<const std::vector<float> *> &) { return kMissing; }
std::string CudaSession::getGrads(std::vector<std::vector<float> *> &) { return kMissing; }
std::string CudaSession::run(const std::string &, const NamedInts &, const NamedTensors<float> *,
                             NamedTensors<float> &, double, bool, int64_t) {
  return kMissing;
}
std::string CudaSession::setCarried(int64_t, const NamedTensors<float> &) { return kMissing; }
std::string CudaSession::getCarried(int64_t, NamedTensors<float> &) { return kMissing; }
std::string CudaSession::applyStep(int64_t, double, double, double &) { return kMissing; }
std::string CudaSession::collectiveId(std::string &) { return kMissing; }
std::string CudaSession::joinCollectives(const std::string &, int, int) { return kMissing; }
std::string CudaSession::averageGrads() { return kMissing; }
bool CudaSession::overlapsReduction() const { return false; }
CudaMemory CudaSession::memory() const { return {}; }
double CudaSession::deviceBytesInUse() const { return 0; }
std::vector<KernelTime> CudaSession::profile() const { return {}; }
dist::CommTimeline CudaSession::commTimeline() const { return {}; }
bool CudaSession::bf16() const { return false; }
} // namespace ttt::exec
