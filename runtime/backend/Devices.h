// Which accelerators this process can see: the query behind `ttt-run devices`.
//
// Implemented by runtime/backend/cuda/Devices.cpp in the CUDA build and by
// runtime/backend/cpu/NoCudaDevices.cpp in the CPU-only build; callers need no #ifdef.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ttt::backend {
struct GpuInfo {
  int index = 0;
  std::string name;
  int multiprocessors = 0;
  uint64_t totalMemoryBytes = 0;
  int computeMajor = 0, computeMinor = 0;
  std::string pciBusId;  // "0000:65:00.0"; empty when the driver does not say
};

// True when this build contains the CUDA backend.
bool cudaBackendBuilt();

// The CUDA toolkit and GPU architectures this build was compiled for ("CUDA 13.0, sm_90"), or ""
// in the CPU-only build.
std::string cudaBuildVersion();

// Lists the visible CUDA GPUs. Returns false with a one-line `error` (what is wrong and what to
// check) when the build has no CUDA backend, no driver is installed, or no GPU is visible; never
// aborts. `driverVersion` is set to e.g. "13.0" when a driver answered.
bool queryCudaDevices(std::vector<GpuInfo> &gpus, std::string &driverVersion, std::string &error);
} // namespace ttt::backend
