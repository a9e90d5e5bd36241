// The processes of a data-parallel job and their collectives. The launcher decides: a process
// started by mpirun/srun (OpenMPI/PMI environment) loads the MPI plugin (libttt_mpi.so, next to
// the executable or in ../lib) — so a single-process run needs no MPI library — and a plain run
// is one rank.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ttt::dist {
class Communicator {
public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0; // "single", "mpi"
  /// In-place elementwise sum over all ranks. "" or one line.
  virtual std::string allReduceSum(float *data, int64_t n) = 0;
  virtual std::string allReduceSum(double *data, int64_t n) = 0;
  virtual std::string barrier() = 0;

  // ZeRO-1's collectives (runtime/dist/Shard.h). The defaults build them from allReduceSum,
  // each rank adding zeros outside its own part (exact in any order); the MPI plugin uses MPI's.
  // Inline, so the class keeps no key function: the plugin, loaded without ttt-run's symbols,
  // needs its type information in its own object.
  /// `send` holds size() x count values; rank r gets in `recv` the sum over the ranks of
  /// send[r x count, (r + 1) x count).
  virtual std::string reduceScatterSum(const float *s, float *r, int64_t n) {
    return scatterBySum(s, r, n);
  }
  virtual std::string reduceScatterSum(const double *s, double *r, int64_t n) {
    return scatterBySum(s, r, n);
  }
  /// Every rank's `count` values `send` land at recv + rank x count, on every rank.
  virtual std::string allGather(const float *s, float *r, int64_t n) {
    return gatherBySum(s, r, n);
  }
  virtual std::string allGather(const double *s, double *r, int64_t n) {
    return gatherBySum(s, r, n);
  }
  /// The same, but only rank 0's `recv` (size() x count values) is written.
  virtual std::string gatherToRoot(const float *s, float *r, int64_t n) {
    return rootBySum(s, r, n);
  }
  virtual std::string gatherToRoot(const double *s, double *r, int64_t n) {
    return rootBySum(s, r, n);
  }

  // Sums started now and finished by waitAll(), for the per-bucket reduction during the
  // backward: every rank starts the same ones in the same order. The defaults finish each one at
  // once (no overlap); the MPI plugin uses MPI's non-blocking collectives.
  virtual std::string startAllReduceSum(float *data, int64_t n) { return allReduceSum(data, n); }
  virtual std::string startAllReduceSum(double *data, int64_t n) { return allReduceSum(data, n); }
  /// The sum lands in rank `root`'s `data`; the other ranks' `data` is undefined afterwards.
  virtual std::string startReduceSum(float *data, int64_t n, int root) {
    (void)root;
    return allReduceSum(data, n);
  }
  virtual std::string startReduceSum(double *data, int64_t n, int root) {
    (void)root;
    return allReduceSum(data, n);
  }
  virtual std::string waitAll() { return ""; }

private:
  template <typename T> std::string scatterBySum(const T *send, T *recv, int64_t count) {
    std::vector<T> all(send, send + count * size());
    if (std::string e = allReduceSum(all.data(), int64_t(all.size())); !e.empty())
      return e;
    std::copy(all.begin() + count * rank(), all.begin() + count * (rank() + 1), recv);
    return "";
  }
  template <typename T> std::string gatherBySum(const T *send, T *recv, int64_t count) {
    std::fill(recv, recv + count * size(), T(0));
    std::copy(send, send + count, recv + count * rank());
    return allReduceSum(recv, count * size());
  }
  template <typename T> std::string rootBySum(const T *send, T *recv, int64_t count) {
    if (rank() == 0)
      return gatherBySum(send, recv, count);
    std::vector<T> all(size_t(count * size()));
    return gatherBySum(send, all.data(), count);
  }
};

/// The communicator of this process's launch. "" in `error` or one line naming the launcher
/// variables and what is missing.
std::unique_ptr<Communicator> openCommunicator(std::string &error);

/// A torchrun-style launch (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; name "torchrun"): TCP
/// to rank 0 for the job's set-up and small sums (the NCCL id, the loss, flags); the CUDA
/// backend's gradients go over NCCL. TTT_RENDEZVOUS_TIMEOUT (s, default 1800) bounds every wait.
std::unique_ptr<Communicator> openRendezvous(std::string &error);
/// The port rank 0 listens on: TTT_RENDEZVOUS_PORT if set; MASTER_PORT + 1 under torchrun
/// (TORCHELASTIC_RUN_ID set), whose agent serves its own store on MASTER_PORT; else MASTER_PORT.
/// -1 and `error` on a bad TTT_RENDEZVOUS_PORT.
int rendezvousPort(int masterPort, std::string &error);
/// The same with explicit values (tests).
std::unique_ptr<Communicator> connectRendezvous(int rank, int size, const std::string &host,
                                                int port, int timeoutSeconds, std::string &error);
} // namespace ttt::dist

// The MPI plugin's entry point (runtime/dist/MpiPlugin.cpp), looked up with dlsym.
extern "C" ttt::dist::Communicator *ttt_mpi_create(const char **error);
