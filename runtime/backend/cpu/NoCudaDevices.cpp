// The device query of the CPU-only build: there is no CUDA backend to ask.
#include "runtime/backend/Devices.h"

namespace ttt::backend {
bool cudaBackendBuilt() { return false; }

std::string cudaBuildVersion() { return ""; }

bool queryCudaDevices(std::vector<GpuInfo> &gpus, std::string &driverVersion, std::string &error) {
  gpus.clear();
  driverVersion.clear();
  error = "this build has no CUDA backend (configured with TTT_CUDA=OFF or without a CUDA "
          "toolkit); rebuild with a CUDA toolkit to use GPUs";
  return false;
}
} // namespace ttt::backend
