// The CUDA backend's executor of one plan (issue 8): all of the plan's memory in one device
// allocation laid out by the plan's memory map (parameters, gradient accumulators, AdamW
// moments, inner-loop checkpoints, one arena shared by the programs) plus the bf16 copies of the
// parameters in bf16 mode; the programs' instructions as kernel launches and cuBLASLt matmuls on
// the calling thread's stream; each program captured as a CUDA graph after its first (eager) run
// and replayed; batches staged in pinned host buffers and copied in asynchronously; the apply
// step (global-norm clip + a fused AdamW) on the device. Parameters, gradients and moments stay
// on the device between steps; the host sees them only when it asks (checkpoints).
//
// Plain C++ header: no CUDA types. In a build without CUDA, open() says so.
#pragma once

#include "runtime/dist/CommTimeline.h"
#include "runtime/exec/Interpreter.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ttt::exec {
struct CudaOptions {
  int device = -1;      // GPU index; -1: the launcher's local rank (OMPI_COMM_WORLD_LOCAL_RANK,
                        // SLURM_LOCALID, LOCAL_RANK), else 0
  bool graphs = true;  // --no-graph runs every program eagerly (debugging)
  bool profile = false; // time every instruction with CUDA events (eager; per-kernel table)
  // ZeRO-1 (runtime/dist/Shard.h): with shards > 1 this device keeps the AdamW moments of its
  // slice of the parameters only; averageGrads reduce-scatters, applyStep updates the slice and
  // all-gathers the parameters. shards must equal the ranks given to joinCollectives.
  int shards = 1;
  int shardRank = 0;
  // With collectives over more than one rank: the last micro-step of a step averages each
  // gradient bucket at its bucket_ready point on a communication stream, overlapped with the
  // rest of the backward (false: averageGrads does it all after the micro-steps).
  bool overlap = true;
  // State passing: the carried states of this many micro-batch slots stay on the device
  // (setCarried/getCarried, run's carriedSlot) instead of crossing to the host every micro-step.
  int64_t carriedSlots = 0;
  // Time the bucket reductions of every micro-step that reduces at the buckets (eager launches,
  // CUDA events on both streams): commTimeline() has the last one.
  bool commTimeline = false;
};

/// Device memory of a session, in bytes.
struct CudaMemory {
  double params = 0, grads = 0, moments = 0, checkpoints = 0, arena = 0, bf16Params = 0,
         scratch = 0, workspace = 0, carried = 0;
  double total() const {
    return params + grads + moments + checkpoints + arena + bf16Params + scratch + workspace +
           carried;
  }
};

/// Time of one instruction kind, summed over a profiled run.
struct KernelTime {
  std::string kernel; // op, with the layer it belongs to where known
  int64_t calls = 0;
  double ms = 0;
};

class CudaSession {
public:
  /// "" on success; else a one-line error (no GPU, wrong target, out of memory with the plan's
  /// memory breakdown and a suggestion).
  static std::unique_ptr<CudaSession> open(const plan::Plan &plan, const CudaOptions &options,
                                           std::string &error);
  ~CudaSession();
  CudaSession(const CudaSession &) = delete;
  CudaSession &operator=(const CudaSession &) = delete;

  /// Parameters, AdamW moments, gradient accumulators, in parameter-table order (host vectors of
  /// the parameters' sizes). "" or an error.
  std::string setParams(const std::vector<const std::vector<float> *> &params);
  std::string getParams(std::vector<std::vector<float> *> &params);
  /// With shards > 1, setMoments keeps this rank's slice of the full tensors it is given, and
  /// getMoments is a collective (every rank calls it, between steps): the slices are all-gathered
  /// into the idle gradient region and copied out where `m`/`v` are not empty (rank 0 passes the
  /// tensors, the others empty lists); the gradient region is left zero.
  std::string setMoments(const std::vector<const std::vector<float> *> &m,
                         const std::vector<const std::vector<float> *> &v);
  std::string getMoments(std::vector<std::vector<float> *> &m, std::vector<std::vector<float> *> &v);
  std::string setGrads(const std::vector<const std::vector<float> *> &g);
  std::string getGrads(std::vector<std::vector<float> *> &g);

  /// Runs a program (eval_step, micro_step) on the device: i32 inputs by name, float inputs
  /// (state passing's "state:*") from `states`, the named outputs copied back into `outputs`.
  /// accumulate_grad adds gradScale x each gradient into the device accumulators.
  /// carriedSlot >= 0 (options.carriedSlots > it): the states that slot carries are read from and
  /// their final values ("state_out:*") written back to the device; `states` then only gives
  /// "state:reset", and `outputs` gets no state_out entries.
  /// lastMicroStep: this run completes the step's gradients; with collectives over several ranks
  /// and options.overlap, each bucket is averaged as the backward closes it (a slice owner's
  /// pieces only, with shards > 1), and averageGrads has nothing left to do.
  std::string run(const std::string &program, const NamedInts &inputs,
                  const NamedTensors<float> *states, NamedTensors<float> &outputs,
                  double gradScale = 1.0, bool lastMicroStep = false, int64_t carriedSlot = -1);
  /// A slot's carried states, host <-> device ("state:<name>" as micro_step's inputs; others
  /// and "state:reset" are ignored / left alone).
  std::string setCarried(int64_t slot, const NamedTensors<float> &states);
  std::string getCarried(int64_t slot, NamedTensors<float> &states);

  /// The plan's apply_step on the device: clip to the global norm, AdamW with learning rate `lr`
  /// (update number `step`, 1-based), then zero the accumulators. Returns the gradient norm
  /// before clipping in `gradNorm` (the only host synchronisation of the step).
  std::string applyStep(int64_t step, double lr, double weightDecay, double &gradNorm);

  /// Data parallelism over GPUs (NCCL): the 128-byte id rank 0 makes (ncclGetUniqueId), then every
  /// rank joins with it. "" or the error (also: this build has no NCCL).
  static std::string collectiveId(std::string &id);
  std::string joinCollectives(const std::string &id, int rank, int ranks);
  /// The gradient accumulators averaged over the ranks, in place on the device (before applyStep);
  /// with shards > 1 only this rank's slice is averaged (a reduce-scatter). Nothing to do after a
  /// lastMicroStep run that reduced at the buckets.
  std::string averageGrads();
  /// Whether lastMicroStep runs reduce at the buckets (several ranks joined, options.overlap).
  bool overlapsReduction() const;

  CudaMemory memory() const;
  /// Device memory in use by this process (cudaMemGetInfo: the session's allocations, the
  /// libraries' and the context); everything is allocated by the first step, so it is the peak.
  double deviceBytesInUse() const;
  /// Per instruction kind, from the runs made with options.profile.
  std::vector<KernelTime> profile() const;
  /// With options.commTimeline: the last micro-step that reduced at the buckets (times only; the
  /// caller fills step and ranks).
  dist::CommTimeline commTimeline() const;
  bool bf16() const;

private:
  CudaSession();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
} // namespace ttt::exec
