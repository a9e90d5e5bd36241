// The processes of a data-parallel job and their collectives. The launcher decides: a process
// started by mpirun/srun (OpenMPI/PMI environment) loads the MPI plugin (libttt_mpi.so, next to
// the executable or in ../lib) — so a single-process run needs no MPI library — and a plain run
// is one rank.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

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
};

/// The communicator of this process's launch. "" in `error` or one line naming the launcher
/// variables and what is missing.
std::unique_ptr<Communicator> openCommunicator(std::string &error);

/// A torchrun-style launch (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; name "torchrun"): TCP
/// to rank 0 for the job's set-up and small sums (the NCCL id, the loss, flags); the CUDA
/// backend's gradients go over NCCL. TTT_RENDEZVOUS_TIMEOUT (s, default 1800) bounds every wait.
std::unique_ptr<Communicator> openRendezvous(std::string &error);
/// The same with explicit values (tests).
std::unique_ptr<Communicator> connectRendezvous(int rank, int size, const std::string &host,
                                                int port, int timeoutSeconds, std::string &error);
} // namespace ttt::dist

// The MPI plugin's entry point (runtime/dist/MpiPlugin.cpp), looked up with dlsym.
extern "C" ttt::dist::Communicator *ttt_mpi_create(const char **error);
