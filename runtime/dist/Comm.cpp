#include "runtime/dist/Comm.h"

#include <cstdlib>
#include <dlfcn.h>
#include <filesystem>
#include <unistd.h>

namespace ttt::dist {
namespace {
class Single final : public Communicator {
public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single"; }
  std::string allReduceSum(float *, int64_t) override { return ""; }
  std::string allReduceSum(double *, int64_t) override { return ""; }
  std::string barrier() override { return ""; }
};

bool startedByMpi() {
  for (const char *var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(var))
      return true;
  return false;
}

std::string executableDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}
} // namespace

std::unique_ptr<Communicator> openCommunicator(std::string &error) {
  error.clear();
  if (!startedByMpi()) {
    if (std::getenv("WORLD_SIZE"))
      return openRendezvous(error); // torchrun-style (Rendezvous.cpp)
    return std::make_unique<Single>();
  }
  // Started by MPI: load the plugin that links libmpi (kept out of ttt-run itself).
  std::string dir = executableDir();
  void *handle = nullptr;
  std::string tried;
  for (const std::string &path : {dir + "/libttt_mpi.so", dir + "/../lib/libttt_mpi.so"}) {
    handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle)
      break;
    tried += std::string(tried.empty() ? "" : "; ") + ::dlerror();
  }
  if (!handle) {
    error = "started by mpirun/srun but the MPI plugin could not be loaded (" + tried +
            "); install libopenmpi-dev and rebuild, or run without mpirun";
    return nullptr;
  }
  auto create = reinterpret_cast<Communicator *(*)(const char **)>(::dlsym(handle, "ttt_mpi_create"));
  if (!create) {
    error = "libttt_mpi.so has no ttt_mpi_create; rebuild it with this ttt-run";
    return nullptr;
  }
  const char *err = nullptr;
  Communicator *comm = create(&err);
  if (!comm) {
    error = std::string("MPI: ") + (err ? err : "initialization failed");
    return nullptr;
  }
  return std::unique_ptr<Communicator>(comm);
}
} // namespace ttt::dist
