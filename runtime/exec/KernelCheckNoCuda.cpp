// `ttt-run kernel-check check` in a build without CUDA (TTT_HAVE_CUDA off): there is no device
// to check; prepare works the same in every build (KernelCheck.cpp).
#include "runtime/exec/KernelCheck.h"

namespace ttt::kcheck {
std::unique_ptr<Device> makeCudaDevice(std::string &error, bool *noBackend) {
  if (noBackend)
    *noBackend = true;
  error = "this ttt-run has no CUDA backend (built without CUDA); run `kernel-check check` with "
          "a CUDA build of ttt-run on the GPU machine (`kernel-check prepare` works here)";
  return nullptr;
}
std::string timeInnerLoop(const InnerLoopTimingShape &, int, int, uint64_t,
                          std::vector<InnerLoopTiming> &) {
  return "this ttt-run has no CUDA backend (built without CUDA); run `kernel-check time` with a "
         "CUDA build of ttt-run on the GPU machine";
}
} // namespace ttt::kcheck
