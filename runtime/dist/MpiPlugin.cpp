// libttt_mpi.so: the Communicator over MPI, loaded by ttt-run only when started by mpirun/srun.
#include "runtime/dist/Comm.h"

#include <mpi.h>

#include <string>

namespace {
class Mpi final : public ttt::dist::Communicator {
public:
  Mpi() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~Mpi() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
      MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }
  std::string allReduceSum(float *data, int64_t n) override { return reduce(data, n, MPI_FLOAT); }
  std::string allReduceSum(double *data, int64_t n) override { return reduce(data, n, MPI_DOUBLE); }
  std::string barrier() override {
    return MPI_Barrier(MPI_COMM_WORLD) == MPI_SUCCESS ? "" : "MPI_Barrier failed";
  }

private:
  std::string reduce(void *data, int64_t n, MPI_Datatype type) {
    // Chunks below INT_MAX elements (MPI counts are int).
    const int64_t chunk = int64_t(1) << 30;
    char *p = static_cast<char *>(data);
    int typeSize = 0;
    MPI_Type_size(type, &typeSize);
    for (int64_t done = 0; done < n; done += chunk) {
      int count = int(std::min(chunk, n - done));
      if (MPI_Allreduce(MPI_IN_PLACE, p + done * typeSize, count, type, MPI_SUM, MPI_COMM_WORLD) !=
          MPI_SUCCESS)
        return "MPI_Allreduce failed";
    }
    return "";
  }
  int rank_ = 0, size_ = 1;
};
} // namespace

extern "C" ttt::dist::Communicator *ttt_mpi_create(const char **error) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized && MPI_Init(nullptr, nullptr) != MPI_SUCCESS) {
    *error = "MPI_Init failed";
    return nullptr;
  }
  return new Mpi();
}
