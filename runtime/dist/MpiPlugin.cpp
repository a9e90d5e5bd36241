// libttt_mpi.so: the Communicator over MPI, loaded by ttt-run only when started by mpirun/srun.
#include "runtime/dist/Comm.h"

#include <mpi.h>

#include <climits>
#include <string>
#include <vector>

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
  std::string reduceScatterSum(const float *s, float *r, int64_t n) override {
    return scatter(s, r, n, MPI_FLOAT);
  }
  std::string reduceScatterSum(const double *s, double *r, int64_t n) override {
    return scatter(s, r, n, MPI_DOUBLE);
  }
  std::string allGather(const float *s, float *r, int64_t n) override {
    return gather(s, r, n, MPI_FLOAT, false);
  }
  std::string allGather(const double *s, double *r, int64_t n) override {
    return gather(s, r, n, MPI_DOUBLE, false);
  }
  std::string gatherToRoot(const float *s, float *r, int64_t n) override {
    return gather(s, r, n, MPI_FLOAT, true);
  }
  std::string gatherToRoot(const double *s, double *r, int64_t n) override {
    return gather(s, r, n, MPI_DOUBLE, true);
  }
  std::string startAllReduceSum(float *d, int64_t n) override { return start(d, n, MPI_FLOAT, -1); }
  std::string startAllReduceSum(double *d, int64_t n) override {
    return start(d, n, MPI_DOUBLE, -1);
  }
  std::string startReduceSum(float *d, int64_t n, int root) override {
    return start(d, n, MPI_FLOAT, root);
  }
  std::string startReduceSum(double *d, int64_t n, int root) override {
    return start(d, n, MPI_DOUBLE, root);
  }
  std::string waitAll() override {
    int rc = MPI_SUCCESS;
    if (!pending_.empty())
      rc = MPI_Waitall(int(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE);
    pending_.clear();
    return rc == MPI_SUCCESS ? "" : "MPI_Waitall failed";
  }
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
  // A shard is one MPI count (an int); the CPU backend's shards stay far below that.
  static std::string tooLarge(int64_t n) {
    return n > int64_t(INT_MAX) ? "MPI: a shard of " + std::to_string(n) +
                                      " values exceeds MPI's int count; run on more ranks"
                                : std::string();
  }
  std::string scatter(const void *send, void *recv, int64_t n, MPI_Datatype type) {
    if (std::string e = tooLarge(n); !e.empty())
      return e;
    int rc = MPI_Reduce_scatter_block(send, recv, int(n), type, MPI_SUM, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? "" : "MPI_Reduce_scatter_block failed";
  }
  std::string gather(const void *send, void *recv, int64_t n, MPI_Datatype type, bool root) {
    if (std::string e = tooLarge(n); !e.empty())
      return e;
    int rc = root ? MPI_Gather(send, int(n), type, recv, int(n), type, 0, MPI_COMM_WORLD)
                  : MPI_Allgather(send, int(n), type, recv, int(n), type, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? "" : root ? "MPI_Gather failed" : "MPI_Allgather failed";
  }
  // root -1: an all-reduce; else a reduce to root (in place there, `data` only read elsewhere).
  std::string start(void *data, int64_t n, MPI_Datatype type, int root) {
    if (std::string e = tooLarge(n); !e.empty())
      return e;
    MPI_Request req;
    const int count = int(n);
    int rc;
    if (root < 0)
      rc = MPI_Iallreduce(MPI_IN_PLACE, data, count, type, MPI_SUM, MPI_COMM_WORLD, &req);
    else if (root == rank_)
      rc = MPI_Ireduce(MPI_IN_PLACE, data, count, type, MPI_SUM, root, MPI_COMM_WORLD, &req);
    else
      rc = MPI_Ireduce(data, nullptr, count, type, MPI_SUM, root, MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS)
      return root < 0 ? "MPI_Iallreduce failed" : "MPI_Ireduce failed";
    pending_.push_back(req);
    return "";
  }
  std::vector<MPI_Request> pending_;
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
