// The device query of the CUDA build, through the CUDA runtime API (host code only).
#include "runtime/backend/Devices.h"

#include <cuda_runtime_api.h>

namespace ttt::backend {
namespace {
std::string versionString(int v) {  // CUDA encodes 13.0 as 13000
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}
} // namespace

bool cudaBackendBuilt() { return true; }

std::string cudaBuildVersion() {
  std::string archs = TTT_CUDA_ARCHS;  // CMake's list, e.g. "90" or "90;100"
  std::string sm;
  for (size_t start = 0; start <= archs.size();) {
    size_t end = archs.find(';', start);
    if (end == std::string::npos)
      end = archs.size();
    if (end > start)
      sm += (sm.empty() ? "sm_" : ", sm_") + archs.substr(start, end - start);
    start = end + 1;
  }
  return "CUDA " + versionString(CUDART_VERSION) + ", " + sm;
}

bool queryCudaDevices(std::vector<GpuInfo> &gpus, std::string &driverVersion, std::string &error) {
  gpus.clear();
  driverVersion.clear();
  int driver = 0;
  if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0) {
    error = "no NVIDIA driver found (libcuda.so.1 is not loadable); install the driver or run on a "
            "GPU machine";
    return false;
  }
  driverVersion = versionString(driver);
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess || count == 0) {
    std::string why = rc != cudaSuccess ? cudaGetErrorString(rc) : "the driver lists none";
    if (driver < CUDART_VERSION)
      error = "no usable CUDA GPU (" + why + "): the driver supports CUDA " + driverVersion +
              " but this build needs " + versionString(CUDART_VERSION) + "; update the NVIDIA driver";
    else
      error = "no CUDA GPU visible (" + why + "); check nvidia-smi and CUDA_VISIBLE_DEVICES";
    return false;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    rc = cudaGetDeviceProperties(&prop, i);
    if (rc != cudaSuccess) {
      error = "cannot query CUDA device " + std::to_string(i) + ": " + cudaGetErrorString(rc) +
              "; check nvidia-smi";
      return false;
    }
    GpuInfo g;
    g.index = i;
    g.name = prop.name;
    g.multiprocessors = prop.multiProcessorCount;
    g.totalMemoryBytes = prop.totalGlobalMem;
    g.computeMajor = prop.major;
    g.computeMinor = prop.minor;
    char bus[32] = {0};
    if (cudaDeviceGetPCIBusId(bus, sizeof bus, i) == cudaSuccess)
      g.pciBusId = bus;
    gpus.push_back(std::move(g));
  }
  return true;
}
} // namespace ttt::backend
