// The CUDA executor (CudaSession.h, CudaRunner.h): the Interpreter's walk over a program's
// instructions with every tensor at its place in the plan's memory map, kernels of
// runtime/backend/cuda, cuBLASLt matmuls (fp32 operands without TF32 in fp32 plans, bf16
// operands with fp32 accumulation in bf16 plans), CUDA graphs.
#include "runtime/exec/CudaRunner.h"
#include "runtime/exec/CudaSession.h"
#include "runtime/exec/HumanBytes.h"

#include "runtime/backend/Devices.h"
#include "runtime/backend/cpu/Fused.h"
#include "runtime/backend/cuda/Kernels.h"
#include "runtime/backend/cuda/Matmul.h"
#include "runtime/backend/cuda/Optimizer.h"
#include "runtime/dist/Shard.h"

#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>
#if TTT_HAVE_NCCL
#include <nccl.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <vector>

namespace ttt::exec {
bool cudaBackendAvailable() { return true; }

namespace {
using cpu::Shape;
using Instrs = flatbuffers::Vector<flatbuffers::Offset<plan::Instr>>;
const cudaStream_t kStream = cudaStreamPerThread; // every launch of this thread goes here

std::string str(const flatbuffers::String *s) { return s ? s->str() : std::string(); }

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
void check(cudaError_t e, const char *what) {
  if (e != cudaSuccess)
    throw CudaError(std::string(what) + ": " + cudaGetErrorString(e));
}

std::vector<std::string> lines(const std::string &all) {
  std::vector<std::string> names;
  std::string item;
  for (char c : all) {
    if (c == '\n') {
      names.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  if (!item.empty())
    names.push_back(item);
  return names;
}

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

// A device allocation that grows (never shrinks) and is freed with its owner. Used for the
// per-instruction scratch, which is sized during a program's first (eager) run, before capture.
struct DeviceBuffer {
  void *ptr = nullptr;
  size_t bytes = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  void *ensure(size_t need, bool capturing) {
    need = std::max<size_t>(need, 4);
    if (need > bytes) {
      if (capturing)
        throw CudaError("a buffer grew while a CUDA graph was being captured (run with --no-graph "
                        "and report this)");
      if (ptr)
        cudaFree(ptr);
      ptr = nullptr;
      bytes = 0;
      check(cudaMalloc(&ptr, need), "cudaMalloc (scratch)");
      bytes = need;
    }
    return ptr;
  }
  ~DeviceBuffer() {
    if (ptr)
      cudaFree(ptr);
  }
};

// A pinned host buffer that grows.
struct PinnedBuffer {
  void *ptr = nullptr;
  size_t bytes = 0;
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer &) = delete;
  PinnedBuffer &operator=(const PinnedBuffer &) = delete;
  void *ensure(size_t need) {
    if (need > bytes) {
      if (ptr)
        cudaFreeHost(ptr);
      ptr = nullptr;
      check(cudaHostAlloc(&ptr, std::max<size_t>(need, 4), cudaHostAllocDefault),
            "cudaHostAlloc (pinned batch buffer)");
      bytes = need;
    }
    return ptr;
  }
  ~PinnedBuffer() {
    if (ptr)
      cudaFreeHost(ptr);
  }
};

std::string tokenError(const char *kernel, const std::vector<int32_t> &ids, int64_t limit,
                       bool allowIgnore, int64_t ignore, const char *what) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (!(allowIgnore && ids[i] == ignore) && (ids[i] < 0 || ids[i] >= limit))
      return std::string(kernel) + ": " + what + " " + std::to_string(ids[i]) + " at position " +
             std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(limit) + ")";
  return "";
}

// The layer an instruction belongs to, for profiles and NVTX ranges: the layer of the parameters
// it reads, or else of the last instruction that read any ("embedding", "layers.3", "head").
std::string paramScope(const std::string &name) {
  if (name.rfind("layers.", 0) == 0) {
    size_t dot = name.find('.', 7);
    return name.substr(0, dot);
  }
  return name.rfind("embed", 0) == 0 ? "embedding" : "head";
}
} // namespace

// One program's tensors placed in the session's memory, and what its runs need.
struct ProgramExec {
  const plan::Program *program = nullptr;
  std::vector<char *> ptr;          // per tensor
  std::vector<plan::Region> region; // per tensor
  std::vector<std::vector<int32_t>> hostInts; // i32 inputs as given (token checks, CSR)
  // By gradient scale and whether the run reduces at the buckets (a last micro-step).
  std::map<std::pair<double, bool>, cudaGraphExec_t> graphs;
  bool ranEagerly = false;
  // The reducing variant runs eagerly once too: NCCL connects its peers lazily, at the first
  // collective of a kind, and that set-up should not happen inside a capture.
  bool ranEagerlyReducing = false;
  std::map<const plan::Instr *, std::string> scope; // instruction -> layer label
};

struct CudaSession::Impl {
  const plan::Plan &plan;
  CudaOptions options;
#if TTT_HAVE_NCCL
  ncclComm_t nccl = nullptr;
#endif
  bool bf16 = false;
  char *base = nullptr; // the one allocation
  size_t totalBytes = 0;
  char *params = nullptr, *grads = nullptr, *moments = nullptr, *checkpoints = nullptr,
       *arena = nullptr, *shadow = nullptr;
  double *sumSq = nullptr, *partials = nullptr;
  size_t paramsBytes = 0, checkpointsBytes = 0, arenaBytes = 0;
  // ZeRO-1: the params and grads regions span paddedBytes (every rank's slice the same length),
  // the moments region 2 x shardBytes from shardBegin of the flat space. One rank: the plan's
  // layout exactly (paddedBytes = shardBytes = paramsBytes, shardBegin 0).
  bool sharded = false;
  size_t paddedBytes = 0, shardBytes = 0, shardBegin = 0;
  double *rankSums = nullptr; // ZeRO-1: every rank's sum of squares of its slice
  // State passing: micro_step's carried states ("state:<name>" -> offset in a slot, elements),
  // options.carriedSlots slots of carriedSlotBytes each from `carried`.
  std::map<std::string, std::pair<size_t, size_t>> carriedLayout;
  size_t carriedSlotBytes = 0;
  char *carried = nullptr;
  std::vector<size_t> paramOffset, paramCount; // per parameter: byte offset, elements
  std::map<std::string, size_t> paramIndex;
  std::map<std::string, ProgramExec> programs;
  std::unique_ptr<cuda::Matmuls> matmuls;
  std::map<std::pair<const plan::Instr *, size_t>, DeviceBuffer> scratch;
  DeviceBuffer castA, castB; // bf16 copies of matmul operands that are not parameters
  // The tensor each cast buffer holds, if any. A value does not change while it lives, so a
  // second matmul on it (u feeds the q, v and gate projections) reuses the cast; a scan body's
  // values change every iteration, so each iteration starts empty.
  std::map<const DeviceBuffer *, int32_t> castHolds;
  std::map<std::string, PinnedBuffer> staging;
  std::set<const plan::Instr *> descReady;
  bool capturing = false;
  // Profile: per label, events around each instruction (eager runs only).
  std::map<std::string, KernelTime> profileTimes;
  // Per run.
  ProgramExec *cur = nullptr;
  float gradScale = 1.0f;
  bool reduceAtBuckets = false; // this run averages each bucket at its bucket_ready
  bool reducedInRun = false;    // the last run did: averageGrads has nothing left
  // Overlap: NCCL's stream, forked from and joined back into kStream with events (so a captured
  // graph holds both branches).
  cudaStream_t commStream = nullptr;
  cudaEvent_t forkEvent = nullptr, joinEvent = nullptr;
  // options.commTimeline: timed events of the running micro-step (its start and its last kernel
  // on kStream; per bucket: ready on kStream, start and end on commStream), made as needed.
  struct TimelineEvents {
    cudaEvent_t ready = nullptr, start = nullptr, end = nullptr;
    int64_t bucket = 0, bytes = 0;
  };
  bool timing = false; // this run records them
  cudaEvent_t runStart = nullptr, computeEnd = nullptr;
  std::vector<TimelineEvents> bucketEvents;
  size_t bucketsTimed = 0;
  dist::CommTimeline timeline;
  cudaEvent_t timedEvent() {
    cudaEvent_t e = nullptr;
    check(cudaEventCreate(&e), "cudaEventCreate");
    return e;
  }

  explicit Impl(const plan::Plan &p) : plan(p) {}
  ~Impl() {
    if (commStream)
      cudaStreamSynchronize(commStream);
    cudaStreamSynchronize(kStream);
    // The graphs first: NCCL keeps a reference for every graph that captured its collectives and
    // ncclCommDestroy waits until they are gone (destroyed after it, every rank of a run that
    // reduced per bucket hung at exit on the first 2-GPU run).
    for (auto &[name, pe] : programs)
      for (auto &[scale, g] : pe.graphs)
        cudaGraphExecDestroy(g);
    programs.clear();
#if TTT_HAVE_NCCL
    if (nccl)
      ncclCommDestroy(nccl);
#endif
    if (forkEvent)
      cudaEventDestroy(forkEvent);
    if (joinEvent)
      cudaEventDestroy(joinEvent);
    for (cudaEvent_t e : {runStart, computeEnd})
      if (e)
        cudaEventDestroy(e);
    for (TimelineEvents &t : bucketEvents)
      for (cudaEvent_t e : {t.ready, t.start, t.end})
        cudaEventDestroy(e);
    if (commStream)
      cudaStreamDestroy(commStream);
    scratch.clear();
    matmuls.reset();
    if (base)
      cudaFree(base);
  }

  // --- set-up ------------------------------------------------------------------------------------
  std::string open() {
    const plan::Compiled &compiled = *plan.compiled();
    if (compiled.target() != plan::Target::sm_90)
      return "this plan was compiled for --target " +
             std::string(plan::EnumNameTarget(compiled.target())) +
             "; the CUDA backend runs plans for sm_90: recompile with tttc --target sm_90 (or run "
             "it with --backend cpu)";
    if (compiled.precision() == plan::Precision::fp64)
      return "fp64 plans run on the CPU only; recompile with tttc --precision bf16 or fp32";
    bf16 = compiled.precision() == plan::Precision::bf16;
    if (!plan.memory() || plan.memory()->size() == 0)
      return "the plan has no memory map; recompile it with this tttc";
    // No driver, too old a driver, no visible GPU: the device query's message.
    std::vector<backend::GpuInfo> gpus;
    std::string driver, why;
    if (!backend::queryCudaDevices(gpus, driver, why))
      return why + " (or run with --backend cpu)";
    // One GPU per process: the one of this rank on its node.
    int device = options.device;
    if (device < 0) {
      device = 0;
      for (const char *var : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"})
        if (const char *v = std::getenv(var); v && *v) {
          device = std::atoi(v);
          break;
        }
    }
    if (device >= int(gpus.size()))
      return "this process is local rank " + std::to_string(device) + " but only " +
             std::to_string(gpus.size()) + " GPU(s) are visible; start at most one process per GPU";
    check(cudaSetDevice(device), "cudaSetDevice");
    if (gpus[size_t(device)].computeMajor < 9)
      return "GPU " + gpus[size_t(device)].name + " is sm_" +
             std::to_string(gpus[size_t(device)].computeMajor) +
             std::to_string(gpus[size_t(device)].computeMinor) +
             "; this build's kernels need sm_90 (Hopper); use --backend cpu";

    // Parameter slots in parameter-table order, as tttc's planner lays them out.
    size_t offset = 0;
    for (const plan::Parameter *p : *plan.parameters()) {
      size_t n = 1;
      for (int64_t d : *p->shape())
        n *= size_t(d);
      paramIndex[str(p->name())] = paramOffset.size();
      paramOffset.push_back(offset);
      paramCount.push_back(n);
      offset += align256(n * sizeof(float));
    }
    const plan::ProgramMemory *m0 = plan.memory()->Get(0);
    paramsBytes = size_t(m0->params_bytes());
    if (offset != paramsBytes)
      return "the plan's parameter region (" + std::to_string(paramsBytes) +
             " bytes) does not match its parameter table (" + std::to_string(offset) +
             "); recompile it with this tttc";
    for (const plan::ProgramMemory *m : *plan.memory()) {
      checkpointsBytes = std::max(checkpointsBytes, size_t(m->checkpoints_bytes()));
      arenaBytes = std::max(arenaBytes, size_t(m->arena_bytes()));
    }
    sharded = options.shards > 1;
    const dist::ShardLayout layout =
        dist::shardLayout(int64_t(paramsBytes), sharded ? options.shards : 1, 256);
    if (sharded && (options.shardRank < 0 || options.shardRank >= options.shards))
      return "ZeRO-1: rank " + std::to_string(options.shardRank) + " is not one of " +
             std::to_string(options.shards);
    paddedBytes = size_t(layout.padded());
    shardBytes = size_t(layout.perRank);
    shardBegin = sharded ? size_t(layout.begin(options.shardRank)) : 0;
    const size_t sumBlocks = size_t(cuda::sumSquaresBlocks(int64_t(paramsBytes / 4)));
    const size_t shadowBytes = bf16 ? align256(paramsBytes / 2) : 0;
    const size_t small =
        align256((sumBlocks + 1 + (sharded ? size_t(options.shards) : 0)) * sizeof(double));
    if (options.carriedSlots > 0)
      for (const plan::Program *prog : *plan.programs())
        if (str(prog->name()) == "micro_step")
          for (const plan::Instr *ins : *prog->instrs()) {
            const std::string name = str(ins->name());
            const int32_t id = str(ins->op()) == "input" ? ins->results()->Get(0) : -1;
            if (id < 0 || name.rfind("state:", 0) != 0 || name == "state:reset" ||
                prog->tensors()->Get(id)->dtype() == plan::DType::i32)
              continue;
            size_t n = 1;
            for (int64_t d : *prog->tensors()->Get(id)->shape())
              n *= size_t(d);
            carriedLayout[name] = {carriedSlotBytes, n};
            carriedSlotBytes += align256(n * sizeof(float));
          }
    const size_t carriedBytes =
        carriedSlotBytes * size_t(std::max<int64_t>(options.carriedSlots, 0));
    totalBytes = paddedBytes * 2 + shardBytes * 2 + checkpointsBytes + arenaBytes + shadowBytes +
                 small + carriedBytes;
    size_t freeBytes = 0, deviceBytes = 0;
    cudaMemGetInfo(&freeBytes, &deviceBytes);
    if (cudaMalloc(&base, totalBytes) != cudaSuccess) {
      const double cacheBytes = innerLoopCacheBytes(plan);
      cudaGetLastError();
      base = nullptr;
      return "out of GPU memory: the plan needs " + humanBytes(double(totalBytes)) +
             " (parameters " + humanBytes(double(paramsBytes)) + ", gradients " +
             humanBytes(double(paramsBytes)) + ", AdamW moments " +
             humanBytes(2.0 * double(shardBytes)) +
             (sharded ? " (ZeRO-1: this rank's slice)" : "") + ", checkpoints " +
             humanBytes(double(checkpointsBytes)) + ", activations " +
             humanBytes(double(arenaBytes)) +
             (bf16 ? ", bf16 weights " + humanBytes(double(shadowBytes)) : std::string()) +
             (carriedBytes > 0 ? ", carried states " + humanBytes(double(carriedBytes))
                               : std::string()) +
             ") and " + humanBytes(double(freeBytes)) + " of " + humanBytes(double(deviceBytes)) +
             " is free; compile with a smaller tttc --per-device-batch (the accumulation grows "
             "to keep the global batch)" +
             (cacheBytes > 0 ? " or with tttc --no-inner-loop-cache (" + humanBytes(cacheBytes) +
                                   " of the checkpoints)"
                             : std::string());
    }
    char *p = base;
    params = p, p += paddedBytes;
    grads = p, p += paddedBytes;
    moments = p, p += 2 * shardBytes;
    checkpoints = p, p += checkpointsBytes;
    arena = p, p += arenaBytes;
    shadow = bf16 ? p : nullptr, p += shadowBytes;
    sumSq = reinterpret_cast<double *>(p);
    partials = sumSq + 1;
    rankSums = sharded ? partials + sumBlocks : nullptr;
    carried = base + (totalBytes - carriedBytes);
    check(cudaMemset(base, 0, totalBytes), "cudaMemset");
    matmuls = std::make_unique<cuda::Matmuls>();

    for (uint32_t i = 0; i < plan.programs()->size(); ++i) {
      const plan::Program *prog = plan.programs()->Get(i);
      const plan::ProgramMemory *mem = plan.memory()->Get(i);
      std::string name = str(prog->name());
      if (name == "init" || name == "apply_step")
        continue; // host init; apply_step is applyStep()
      if (str(mem->program()) != name || !mem->buffers() ||
          mem->buffers()->size() != prog->tensors()->size())
        return "program " + name + ": the memory map does not match its tensors; recompile the "
               "plan with this tttc";
      ProgramExec &pe = programs[name];
      pe.program = prog;
      const size_t n = prog->tensors()->size();
      pe.ptr.resize(n);
      pe.region.resize(n);
      pe.hostInts.resize(n);
      for (size_t t = 0; t < n; ++t) {
        const plan::Buffer *b = mem->buffers()->Get(uint32_t(t));
        char *regionBase = nullptr;
        size_t limit = 0;
        switch (b->region()) {
        case plan::Region::params: regionBase = params, limit = paramsBytes; break;
        case plan::Region::grads: regionBase = grads, limit = paramsBytes; break;
        case plan::Region::moments: regionBase = moments, limit = 2 * shardBytes; break;
        case plan::Region::checkpoints: regionBase = checkpoints, limit = checkpointsBytes; break;
        case plan::Region::arena: regionBase = arena, limit = arenaBytes; break;
        }
        if (b->offset() < 0 || size_t(b->offset() + b->size()) > limit)
          return "program " + name + ": tensor " + std::to_string(t) +
                 " lies outside its memory region; the plan is corrupt, recompile it";
        pe.ptr[t] = regionBase + b->offset();
        pe.region[t] = b->region();
      }
      labelScopes(pe, prog->instrs(), "embedding");
    }
    return "";
  }

  void labelScopes(ProgramExec &pe, const Instrs *instrs, std::string current) {
    if (!instrs)
      return;
    // Tensors that hold a parameter, by id -> name.
    for (const plan::Instr *ins : *instrs) {
      std::string op = str(ins->op());
      if (op == "param" || op == "accumulate_grad")
        current = paramScope(str(ins->name()));
      for (int32_t id : *ins->operands())
        if (auto it = paramOf.find({pe.program, id}); it != paramOf.end())
          current = paramScope(it->second);
      if (op == "param")
        paramOf[{pe.program, ins->results()->Get(0)}] = str(ins->name());
      pe.scope[ins] = current;
      if (op == "scan")
        labelScopes(pe, ins->body(), current);
    }
  }
  std::map<std::pair<const plan::Program *, int32_t>, std::string> paramOf;

  // --- tensors -----------------------------------------------------------------------------------
  Shape shape(int32_t id) const {
    auto *dims = cur->program->tensors()->Get(id)->shape();
    return dims ? Shape(dims->begin(), dims->end()) : Shape{};
  }
  int64_t size(int32_t id) const { return cpu::numElements(shape(id)); }
  // A value tttc stores as bf16 (ttt-store-bf16): only matmuls read it, as their bf16 operand.
  bool stored16(int32_t id) const {
    return cur->program->tensors()->Get(id)->dtype() == plan::DType::bf16;
  }
  float *F(int32_t id) { return reinterpret_cast<float *>(cur->ptr[size_t(id)]); }
  int32_t *I(int32_t id) { return reinterpret_cast<int32_t *>(cur->ptr[size_t(id)]); }
  void *S(const plan::Instr &ins, size_t slot, size_t bytes) {
    return scratch[{&ins, slot}].ensure(bytes, capturing); // map nodes never move
  }
  // A matmul operand as the matmul reads it: fp32 as is, or bf16 (the parameter's copy, or the
  // value cast into `cast`).
  const void *operand(int32_t id, DeviceBuffer &cast) {
    if (!bf16)
      return F(id);
    if (stored16(id))
      return cur->ptr[size_t(id)];
    if (cur->region[size_t(id)] == plan::Region::params)
      return shadow + (cur->ptr[size_t(id)] - params) / 2;
    auto held = castHolds.find(&cast);
    if (held != castHolds.end() && held->second == id)
      return cast.ptr;
    const int64_t n = size(id);
    void *y = cast.ensure(size_t(n) * 2, capturing);
    cuda::castToBf16(F(id), n, y);
    castHolds[&cast] = id;
    return y;
  }
  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a, int64_t strideA,
            const void *b, int64_t strideB, float beta, float *c, int64_t strideC, int64_t batch) {
    if (m == 0 || n == 0 || batch == 0)
      return;
    if (k == 0) {
      if (beta == 0.0f)
        cuda::fill(c, batch * strideC + m * n, 0.0);
      return;
    }
    cuda::MatmulShape s;
    s.transA = ta, s.transB = tb, s.m = m, s.n = n, s.k = k, s.batch = batch;
    s.strideA = strideA, s.strideB = strideB, s.strideC = strideC, s.beta = beta;
    s.operands = bf16 ? cuda::MatmulOperands::bf16 : cuda::MatmulOperands::f32;
    matmuls->run(s, a, b, c, kStream);
  }
  void copy(void *dst, const void *src, size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, kStream), "device copy");
  }

  // --- one run -------------------------------------------------------------------------------------
  // The carried state `name` of a slot on the device, or nullptr (no such state or slot < 0).
  char *carriedState(int64_t slot, const std::string &name, size_t &count) {
    auto it = carriedLayout.find(name);
    if (slot < 0 || it == carriedLayout.end())
      return nullptr;
    count = it->second.second;
    return carried + size_t(slot) * carriedSlotBytes + it->second.first;
  }
  // Host work before the launch: inputs into pinned buffers and onto the device (a slot's carried
  // states from the device), token checks, the embedding backward's row lists. Nothing here is
  // part of a graph.
  std::string stage(const NamedInts &inputs, const NamedTensors<float> *states, int64_t slot) {
    return stageInstrs(cur->program->instrs(), inputs, states, slot);
  }
  std::string stageInstrs(const Instrs *instrs, const NamedInts &inputs,
                          const NamedTensors<float> *states, int64_t slot) {
    if (!instrs)
      return "";
    for (const plan::Instr *ins : *instrs) {
      std::string op = str(ins->op()), name = str(ins->name());
      auto arg = [&](int i) { return ins->operands()->Get(i); };
      if (op == "input") {
        const int32_t id = ins->results()->Get(0);
        const int64_t n = size(id);
        const bool ints = cur->program->tensors()->Get(id)->dtype() == plan::DType::i32;
        const void *src = nullptr;
        if (ints) {
          auto it = inputs.find(name);
          if (it == inputs.end() || int64_t(it->second.size()) != n)
            return "input: input '" + name + "' is missing or has the wrong size";
          cur->hostInts[size_t(id)] = it->second;
          src = it->second.data();
        } else if (size_t count = 0; char *dev = carriedState(slot, name, count)) {
          if (int64_t(count) != n)
            return "input: carried state '" + name + "' has the wrong size";
          copy(cur->ptr[size_t(id)], dev, size_t(n) * 4);
          continue;
        } else {
          if (!states || !states->count(name) || int64_t(states->at(name).size()) != n)
            return "input: state '" + name + "' is missing or has the wrong size";
          src = states->at(name).data();
        }
        void *pinned = staging[name].ensure(size_t(n) * 4);
        std::memcpy(pinned, src, size_t(n) * 4);
        check(cudaMemcpyAsync(cur->ptr[size_t(id)], pinned, size_t(n) * 4,
                              cudaMemcpyHostToDevice, kStream),
              "input copy");
      } else if (op == "embedding") {
        if (std::string e = tokenError("embedding", cur->hostInts[size_t(arg(0))],
                                       shape(arg(1))[0], false, 0, "token");
            !e.empty())
          return e;
      } else if (op == "softmax_xent" || op == "lm_head_xent" || op == "lm_head_xent_bwd") {
        const bool lm = op != "softmax_xent";
        const int64_t vocab = lm ? shape(arg(1))[0] : shape(arg(0)).back();
        if (std::string e = tokenError(op.c_str(), cur->hostInts[size_t(arg(lm ? 2 : 1))], vocab,
                                       true, ins->ints()->Get(0), "target");
            !e.empty())
          return e;
      } else if (op == "embedding_bwd") {
        const Shape table = shape(ins->results()->Get(0));
        const std::vector<int32_t> &tokens = cur->hostInts[size_t(arg(0))];
        if (std::string e = tokenError("embedding_backward", tokens, table[0], false, 0, "token");
            !e.empty())
          return e;
        // Rows of each token in increasing position: the CPU's summation order.
        const size_t vocab = size_t(table[0]);
        auto *pinned = static_cast<int64_t *>(
            staging["csr:" + std::to_string(reinterpret_cast<uintptr_t>(ins))].ensure(
                (vocab + 1 + tokens.size()) * sizeof(int64_t)));
        int64_t *offsets = pinned, *positions = pinned + vocab + 1;
        std::fill(offsets, offsets + vocab + 1, 0);
        for (int32_t t : tokens)
          ++offsets[size_t(t) + 1];
        for (size_t v = 0; v < vocab; ++v)
          offsets[v + 1] += offsets[v];
        std::vector<int64_t> next(offsets, offsets + vocab);
        for (size_t i = 0; i < tokens.size(); ++i)
          positions[size_t(next[size_t(tokens[i])]++)] = int64_t(i);
        const size_t bytes = (vocab + 1 + tokens.size()) * sizeof(int64_t);
        check(cudaMemcpyAsync(S(*ins, 0, bytes), pinned, bytes, cudaMemcpyHostToDevice, kStream),
              "embedding_bwd rows copy");
      } else if (op == "scan") {
        if (std::string e = stageInstrs(ins->body(), inputs, states, slot); !e.empty())
          return e;
      }
    }
    return "";
  }

  std::string launch() {
    ProgramExec &pe = *cur;
    bool &ranEagerly = reduceAtBuckets ? pe.ranEagerlyReducing : pe.ranEagerly;
    const bool useGraph = options.graphs && !options.profile && !timing && ranEagerly;
    if (!useGraph) {
      std::string err = execProgram();
      ranEagerly = err.empty();
      return err;
    }
    auto it = pe.graphs.find({gradScale, reduceAtBuckets});
    if (it == pe.graphs.end()) {
      check(cudaStreamBeginCapture(kStream, cudaStreamCaptureModeThreadLocal), "graph capture");
      capturing = true;
      std::string err;
      try {
        err = execProgram();
      } catch (const std::exception &e) {
        err = e.what();
      }
      capturing = false;
      cudaGraph_t graph = nullptr;
      cudaError_t end = cudaStreamEndCapture(kStream, &graph);
      if (err.empty() && end != cudaSuccess)
        err = std::string("graph capture: ") + cudaGetErrorString(end);
      if (!err.empty()) {
        if (graph)
          cudaGraphDestroy(graph);
        cudaGetLastError();
        return err;
      }
      cudaGraphExec_t exec = nullptr;
      cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      check(inst, "graph instantiate");
      it = pe.graphs.emplace(std::make_pair(double(gradScale), reduceAtBuckets), exec).first;
    }
    check(cudaGraphLaunch(it->second, kStream), "graph launch");
    return "";
  }

  // The program's instructions; when reducing at the buckets, the communication stream joins
  // kStream again at the end (inside the capture, so the graph waits for the last bucket).
  std::string execProgram() {
    std::vector<int32_t> yielded;
    if (timing) {
      if (!runStart) {
        runStart = timedEvent();
        computeEnd = timedEvent();
      }
      bucketsTimed = 0;
      check(cudaEventRecord(runStart, kStream), "cudaEventRecord");
    }
    std::string err = exec(cur->program->instrs(), yielded);
    if (timing)
      check(cudaEventRecord(computeEnd, kStream), "cudaEventRecord");
    if (reduceAtBuckets) {
      check(cudaEventRecord(joinEvent, commStream), "cudaEventRecord");
      check(cudaStreamWaitEvent(kStream, joinEvent, 0), "cudaStreamWaitEvent");
    }
    return err;
  }

  // A bucket's gradients are final: average them over the ranks on commStream once kStream's
  // work so far (the accumulations) is done, while kStream goes on with the backward, which
  // never touches them again. Slots next to each other go as one range (their padding is zero
  // on every rank). Without ZeRO-1 an all-reduce; with it, each piece of a range that lies in
  // rank r's slice is reduced to rank r only (the reduce-scatter's bytes, per bucket).
  std::string reduceBucket(const plan::Instr &ins) {
#if TTT_HAVE_NCCL
    std::vector<std::pair<int64_t, int64_t>> slots;
    for (const std::string &name : lines(str(ins.name()))) {
      auto it = paramIndex.find(name);
      if (it == paramIndex.end())
        return "bucket_ready: unknown parameter '" + name + "'";
      const size_t i = it->second;
      slots.push_back({int64_t(paramOffset[i]),
                       int64_t(i + 1 < paramOffset.size() ? paramOffset[i + 1] : paramsBytes)});
    }
    const dist::ShardLayout slices{options.shards, int64_t(shardBytes)};
    TimelineEvents *te = nullptr;
    if (timing) {
      if (bucketsTimed == bucketEvents.size())
        bucketEvents.push_back({timedEvent(), timedEvent(), timedEvent()});
      te = &bucketEvents[bucketsTimed++];
      te->bucket = ins.ints()->Get(0);
      te->bytes = 0;
      check(cudaEventRecord(te->ready, kStream), "cudaEventRecord");
    }
    check(cudaEventRecord(forkEvent, kStream), "cudaEventRecord");
    check(cudaStreamWaitEvent(commStream, forkEvent, 0), "cudaStreamWaitEvent");
    if (te)
      check(cudaEventRecord(te->start, commStream), "cudaEventRecord");
    ncclGroupStart();
    ncclResult_t r = ncclSuccess;
    for (const dist::BucketPiece &p : dist::bucketPieces(slots, sharded ? &slices : nullptr)) {
      char *at = grads + p.begin;
      const size_t count = size_t(p.end - p.begin) / sizeof(float);
      if (te)
        te->bytes += p.end - p.begin;
      r = p.owner < 0 ? ncclAllReduce(at, at, count, ncclFloat, ncclAvg, nccl, commStream)
                      : ncclReduce(at, at, count, ncclFloat, ncclAvg, p.owner, nccl, commStream);
      if (r != ncclSuccess)
        break;
    }
    const ncclResult_t grouped = ncclGroupEnd();
    if (te)
      check(cudaEventRecord(te->end, commStream), "cudaEventRecord");
    if (r == ncclSuccess)
      r = grouped;
    if (r != ncclSuccess)
      return std::string("NCCL: reducing gradient bucket ") + std::to_string(ins.ints()->Get(0)) +
             " failed: " + ncclGetErrorString(r);
    return "";
#else
    (void)ins;
    return "bucket_ready: no NCCL in this build";
#endif
  }

  std::string run(const std::string &name, const NamedInts &inputs,
                  const NamedTensors<float> *states, NamedTensors<float> &outputs, double scale,
                  bool lastMicroStep, int64_t slot) {
    auto it = programs.find(name);
    if (slot >= options.carriedSlots)
      return "micro-batch slot " + std::to_string(slot) + " has no carried states on the device";
    if (it == programs.end())
      return "the plan has no " + name + " program; recompile it with this tttc";
    cur = &it->second;
    gradScale = float(scale);
    reduceAtBuckets = lastMicroStep && commStream != nullptr;
    timing = reduceAtBuckets && options.commTimeline;
    if (std::string err = stage(inputs, states, slot); !err.empty())
      return err;
    if (std::string err = launch(); !err.empty())
      return err;
    reducedInRun = reduceAtBuckets;
    check(cudaStreamSynchronize(kStream), "the program's kernels");
    if (timing) {
      auto since = [&](cudaEvent_t e) {
        float ms = 0;
        check(cudaEventElapsedTime(&ms, runStart, e), "cudaEventElapsedTime");
        return double(ms);
      };
      timeline.computeEndMs = since(computeEnd);
      timeline.buckets.clear();
      for (size_t i = 0; i < bucketsTimed; ++i) {
        const TimelineEvents &t = bucketEvents[i];
        timeline.buckets.push_back(
            {t.bucket, t.bytes, since(t.ready), since(t.start), since(t.end)});
      }
      timing = false;
    }
    for (const plan::Instr *ins : *cur->program->instrs()) {
      if (str(ins->op()) != "output")
        continue;
      const int32_t id = ins->operands()->Get(0);
      const std::string out = str(ins->name());
      if (out.rfind("state_out:", 0) == 0) // the next run of the slot reads it from there
        if (size_t count = 0; char *dev = carriedState(slot, "state:" + out.substr(10), count)) {
          copy(dev, F(id), count * sizeof(float));
          continue;
        }
      std::vector<float> &host = outputs[out];
      host.resize(size_t(size(id)));
      check(cudaMemcpy(host.data(), F(id), host.size() * sizeof(float), cudaMemcpyDeviceToHost),
            "output copy");
    }
    return "";
  }

  std::string exec(const Instrs *instrs, std::vector<int32_t> &yielded) {
    if (!instrs)
      return "";
    std::string range;
    if (instrs == cur->program->instrs())
      castHolds.clear(); // a new run
    for (uint32_t index = 0; index < instrs->size(); ++index) {
      const plan::Instr *instr = instrs->Get(index);
      std::string op = str(instr->op());
      if (op == "yield") {
        yielded.assign(instr->operands()->begin(), instr->operands()->end());
        continue;
      }
      const bool timed = options.profile && op != "scan" && op != "param" && op != "input" &&
                         op != "output" && op != "bucket_ready";
      const std::string &label = cur->scope[instr];
      if (options.profile && label != range) {
        if (!range.empty())
          nvtxRangePop();
        nvtxRangePushA(label.c_str());
        range = label;
      }
      cudaEvent_t before = nullptr, after = nullptr;
      if (timed) {
        check(cudaEventCreate(&before), "cudaEventCreate");
        check(cudaEventCreate(&after), "cudaEventCreate");
        check(cudaEventRecord(before, kStream), "cudaEventRecord");
      }
      std::string err = op == "scan" ? scan(*instr) : step(op, *instr);
      if (err.empty()) {
        if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
          err = op + ": " + cudaGetErrorString(e);
      }
      if (timed) {
        check(cudaEventRecord(after, kStream), "cudaEventRecord");
        check(cudaEventSynchronize(after), "cudaEventSynchronize");
        float ms = 0;
        cudaEventElapsedTime(&ms, before, after);
        std::string kernel = op == "fused_elementwise" || op == "binary" || op == "unary"
                                 ? op + " " + lines(str(instr->name())).front()
                                 : op;
        KernelTime &k = profileTimes[label + "\t" + kernel];
        k.kernel = label + "\t" + kernel;
        ++k.calls;
        k.ms += ms;
        cudaEventDestroy(before);
        cudaEventDestroy(after);
      }
      if (!err.empty()) {
        if (!range.empty())
          nvtxRangePop();
        return err;
      }
    }
    if (!range.empty())
      nvtxRangePop();
    return "";
  }

  std::string step(const std::string &op, const plan::Instr &ins) {
    auto arg = [&](int i) { return ins.operands()->Get(i); };
    auto res = [&](int i) { return ins.results()->Get(i); };
    auto ints = [&](int i) { return ins.ints()->Get(i); };
    auto flt = [&](int i) { return ins.floats()->Get(i); };
    auto in = [&](int i) -> const float * { return F(arg(i)); };
    auto out = [&](int i) { return F(res(i)); };
    std::string name = str(ins.name());

    if (op == "bucket_ready" && reduceAtBuckets) {
      return reduceBucket(ins);
    } else if (op == "param" || op == "input" || op == "output" || op == "bucket_ready") {
      // Parameters are read in place, inputs were staged, outputs are read after the run; a
      // bucket is reduced only in a step's last micro-step over several ranks.
    } else if (op == "accumulate_grad") {
      auto it = paramIndex.find(name);
      if (it == paramIndex.end() || int64_t(paramCount[it->second]) != size(arg(0)))
        return "accumulate_grad: no accumulator of the right size for '" + name + "'";
      cuda::accumulate(reinterpret_cast<float *>(grads + paramOffset[it->second]), in(0),
                       size(arg(0)), gradScale);
    } else if (op == "embedding") {
      Shape table = shape(arg(1));
      cuda::embedding(I(arg(0)), size(arg(0)), in(1), table[1], out(0));
    } else if (op == "matmul") {
      Shape a = shape(arg(0)), b = shape(arg(1));
      const bool ta = ints(0) != 0, tb = ints(1) != 0;
      size_t ra = a.size(), rb = b.size();
      int64_t m = ta ? a[ra - 1] : a[ra - 2], k = ta ? a[ra - 2] : a[ra - 1];
      int64_t n = tb ? b[rb - 2] : b[rb - 1];
      int64_t batch = size(arg(0)) / (a[ra - 1] * a[ra - 2]);
      gemm(ta, tb, m, n, k, operand(arg(0), castA), a[ra - 1] * a[ra - 2],
           operand(arg(1), castB), rb == 2 ? 0 : b[rb - 1] * b[rb - 2], 0.0f, out(0), m * n,
           batch);
    } else if (op == "rms_norm") {
      int64_t d = shape(arg(0)).back();
      if (stored16(res(0)))
        cuda::rmsNormBf16(in(0), in(1), size(arg(0)) / d, d, flt(0), cur->ptr[size_t(res(0))]);
      else
        cuda::rmsNorm(in(0), in(1), size(arg(0)) / d, d, flt(0), out(0));
    } else if (op == "layer_norm") {
      int64_t d = shape(arg(0)).back();
      cuda::layerNorm(in(0), in(1), in(2), size(arg(0)) / d, d, flt(0), out(0));
    } else if (op == "causal_conv") {
      Shape x = shape(arg(0));
      cuda::causalConv(in(0), in(1), in(2), x[0], x[1], x[2], shape(arg(1))[0], out(0),
                       ins.operands()->size() > 3 ? in(3) : nullptr);
    } else if (op == "rope" || op == "rope_bwd") {
      Shape x = shape(arg(0));
      cuda::rope(in(0), x[0], x[1], x[2], x[3], ints(0), flt(0), op == "rope" ? 1.0 : -1.0,
                 out(0));
    } else if (op == "binary") {
      cpu::BinaryOp kind;
      if (!cpu::binaryOpByName(name, kind))
        return op + ": unknown kind '" + name + "'";
      Shape sa = shape(arg(0)), sb = shape(arg(1)), so = cpu::broadcastShape(sa, sb);
      if (so.empty() && !(sa.empty() && sb.empty()))
        return "binary: shapes do not broadcast";
      if (stored16(res(0)))
        cuda::binaryBf16(kind, in(0), sa, in(1), sb, so, cur->ptr[size_t(res(0))]);
      else
        cuda::binary(kind, in(0), sa, in(1), sb, so, out(0));
    } else if (op == "unary" || op == "unary_bwd") {
      cpu::UnaryOp kind;
      if (!cpu::unaryOpByName(name, kind))
        return op + ": unknown kind '" + name + "'";
      if (op == "unary")
        cuda::unary(kind, in(0), size(arg(0)), flt(0), out(0));
      else
        cuda::unaryBackward(kind, in(0), in(1), in(2), size(arg(0)), flt(0), out(0));
    } else if (op == "reduce") {
      cpu::ReduceOp kind;
      if (!cpu::reduceOpByName(name, kind))
        return op + ": unknown kind '" + name + "'";
      int64_t cols = shape(arg(0)).back();
      cuda::reduceLast(kind, in(0), size(arg(0)) / cols, cols, out(0));
    } else if (op == "transpose") {
      std::vector<int> perm(ins.ints()->begin(), ins.ints()->end());
      cuda::transpose(in(0), shape(arg(0)), perm, out(0));
    } else if (op == "reshape") {
      // tttc's memory plan gives a reshape its operand's buffer (a view: nothing to move); a
      // plan that gave it its own buffer (older tttc) copies.
      if (out(0) != in(0))
        copy(out(0), in(0), size_t(size(arg(0))) * (stored16(arg(0)) ? 2 : sizeof(float)));
    } else if (op == "concat" || op == "slice") {
      const int axis = int(ints(0));
      Shape big = shape(op == "concat" ? res(0) : arg(0));
      int64_t outer = 1, inner = 1;
      for (int d = 0; d < axis; ++d)
        outer *= big[d];
      for (size_t d = size_t(axis) + 1; d < big.size(); ++d)
        inner *= big[d];
      if (op == "concat") {
        const int64_t first = shape(arg(0))[axis];
        cuda::insert(in(0), outer, big[axis], inner, 0, first, out(0));
        cuda::insert(in(1), outer, big[axis], inner, first, big[axis] - first, out(0));
      } else {
        cuda::slice(in(0), outer, big[axis], inner, ints(1), shape(res(0))[axis], out(0));
      }
    } else if (op == "tril") {
      int64_t n = shape(arg(0)).back();
      cuda::tril(in(0), size(arg(0)) / (n * n), n, out(0));
    } else if (op == "constant") {
      cuda::fill(out(0), size(res(0)), flt(0));
    } else if (op == "iota") {
      cuda::iota(out(0), size(res(0)), flt(0));
    } else if (op == "softmax_xent") {
      int64_t vocab = shape(arg(0)).back();
      cuda::softmaxXent(in(0), I(arg(1)), size(arg(0)) / vocab, vocab, ints(0), out(0), out(1));
    } else if (op == "masked_mean") {
      Shape s = shape(arg(0));
      cuda::maskedMean(in(0), in(1), s[0], s[1], out(0));
    } else if (op == "embedding_bwd") {
      Shape table = shape(res(0));
      const int64_t n = size(arg(0));
      auto *rows = static_cast<int64_t *>(
          S(ins, 0, size_t(table[0] + 1 + n) * sizeof(int64_t))); // staged before the launch
      cuda::embeddingBackward(rows, rows + table[0] + 1, in(1), table[0], table[1], out(0));
    } else if (op == "rms_norm_bwd") {
      int64_t d = shape(arg(0)).back(), rows = size(arg(0)) / d;
      auto *rs = static_cast<double *>(S(ins, 0, size_t(rows) * sizeof(double)));
      cuda::rmsNormBackward(in(0), in(1), in(2), rows, d, flt(0), out(0), out(1), rs);
    } else if (op == "layer_norm_bwd") {
      int64_t d = shape(arg(0)).back(), rows = size(arg(0)) / d;
      auto *rs = static_cast<double *>(S(ins, 0, size_t(2 * rows) * sizeof(double)));
      cuda::layerNormBackward(in(0), in(1), in(2), rows, d, flt(0), out(0), out(1), out(2), rs);
    } else if (op == "causal_conv_bwd") {
      Shape x = shape(arg(0));
      cuda::causalConvBackward(in(0), in(1), in(2), x[0], x[1], x[2], shape(arg(1))[0], out(0),
                               out(1), out(2), ins.operands()->size() > 3 ? in(3) : nullptr);
    } else if (op == "sum_to") {
      cuda::sumTo(in(0), shape(arg(0)), shape(res(0)), out(0));
    } else if (op == "softmax_xent_bwd") {
      int64_t vocab = shape(arg(0)).back();
      cuda::softmaxXentBackward(in(0), I(arg(1)), in(2), size(arg(0)) / vocab, vocab, ints(0),
                                out(0));
    } else if (op == "masked_mean_bwd") {
      Shape m = shape(arg(0));
      cuda::maskedMeanBackward(in(0), in(1), m[0], m[1], out(0));
    } else if (op == "inner_loop_fwd" || op == "inner_loop_bwd") {
      Shape qs = shape(arg(2));
      if (qs.size() != 5)
        return op + ": q must have 5 dimensions";
      const cpu::InnerLoopShape s = cpu::InnerLoopShape::ofQ(
          qs.data(), ints(0), flt(0), ins.ints()->size() > 1 && ins.ints()->Get(1) != 0);
      std::vector<float *> r;
      for (uint32_t i = 0; i < ins.results()->size(); ++i)
        r.push_back(out(int(i)));
      // bf16 plans: the tensor-core kernels (parity 1e-2, as the bf16 matmuls); fp32: exact.
      const auto math = bf16 ? cuda::InnerLoopMath::TensorCore : cuda::InnerLoopMath::Exact;
      // The inner-loop cache (tttc, bf16 plans): the forward's 6th result, the backward's 14th
      // operand; its record size is this runtime's kernels' own.
      const bool fwd = op == "inner_loop_fwd";
      const size_t cacheAt = fwd ? 5 : 13;
      const auto &cacheIds = fwd ? *ins.results() : *ins.operands();
      float *cache = nullptr;
      if (cacheIds.size() > cacheAt) {
        const int32_t id = cacheIds.Get(uint32_t(cacheAt));
        const int64_t want =
            s.n * s.batch * s.heads * cuda::innerLoopCacheFloats(s.miniBatch, s.headDim);
        if (size(id) != want)
          return op + ": the plan's inner-loop cache has " + std::to_string(size(id)) +
                 " floats, this runtime's kernels use " + std::to_string(want) +
                 " (rebuild the plan with the tttc of this ttt-run)";
        cache = F(id);
      }
      if (fwd) {
        void *ws = S(ins, 0, cuda::innerLoopForwardWorkspace(s));
        cuda::innerLoopForward(s, in(0), in(1), in(2), in(3), in(4), in(5), in(6), in(7), in(8),
                               in(9), r[0], r[1], r[2], r[3], r[4], ws, math, cache);
      } else {
        void *ws = S(ins, 0, cuda::innerLoopBackwardWorkspace(s, math));
        cuda::innerLoopBackward(s, in(0), in(1), in(2), in(3), in(4), in(5), in(6), in(7), in(8),
                                in(9), in(10), in(11), in(12), r[0], r[1], r[2], r[3], r[4], r[5],
                                r[6], r[7], r[8], r[9], ws, math, cache);
      }
    } else if (op == "fused_elementwise") {
      return fused(ins);
    } else if (op == "lm_head_xent" || op == "lm_head_xent_bwd") {
      return lmHead(op, ins);
    } else {
      return op + ": no CUDA kernel for this instruction (plan from a newer tttc?)";
    }
    return "";
  }

  // The step descriptors hold device pointers, fixed by the memory map: uploaded once.
  std::string fused(const plan::Instr &ins) {
    std::vector<cpu::FusedStep> steps;
    const int nIn = int(ins.operands()->size());
    if (std::string err = cpu::parseFusedSteps(lines(str(ins.name())), ins.ints()->data(),
                                               ins.floats()->data(), nIn, steps);
        !err.empty())
      return err;
    const int nSteps = int(steps.size());
    if (nIn + nSteps > cuda::kMaxFusedSlots)
      return "fused_elementwise: " + std::to_string(nIn + nSteps) +
             " inputs and steps; the CUDA kernel takes at most " +
             std::to_string(cuda::kMaxFusedSlots);
    const Shape outShape = shape(ins.results()->Get(0));
    const size_t blobBytes = size_t(nIn) * sizeof(cuda::FusedInput) +
                             size_t(nSteps) * sizeof(cuda::FusedStepDesc);
    void *desc = S(ins, 0, blobBytes);
    if (!descReady.count(&ins)) {
      std::vector<const float *> data;
      std::vector<Shape> shapes;
      for (int32_t id : *ins.operands()) {
        data.push_back(F(id));
        shapes.push_back(shape(id));
      }
      std::vector<char> blob;
      try {
        blob = cuda::fusedDescriptor(data, shapes, steps, outShape);
      } catch (const std::invalid_argument &e) {
        return e.what();
      }
      check(cudaMemcpy(desc, blob.data(), blob.size(), cudaMemcpyHostToDevice),
            "fused_elementwise descriptor");
      descReady.insert(&ins);
    }
    const int32_t result = ins.results()->Get(0);
    if (stored16(result))
      cuda::fusedElementwiseBf16(desc, nIn, nSteps, outShape, cur->ptr[size_t(result)]);
    else
      cuda::fusedElementwise(desc, nIn, nSteps, outShape, F(result));
    return "";
  }

  // Fused.h: hidden [..., D] (n rows), table [V, D]; ints [ignore_token, chunk]. The logits of
  // every row are taken `chunk` vocabulary columns at a time, never [n, V] at once.
  std::string lmHead(const std::string &op, const plan::Instr &ins) {
    auto arg = [&](int i) { return ins.operands()->Get(i); };
    Shape e = shape(arg(1));
    const int64_t dim = e[1], vocab = e[0], n = size(arg(0)) / dim;
    const int64_t ignore = ins.ints()->Get(0);
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(ins.ints()->Get(1), vocab));
    const size_t elem = bf16 ? 2 : 4;
    const char *h = static_cast<const char *>(operand(arg(0), castA));
    const char *table = static_cast<const char *>(operand(arg(1), castB));
    const int32_t *targets = I(arg(2));
    auto *logits = static_cast<float *>(S(ins, 0, size_t(n * chunk) * sizeof(float)));
    if (op == "lm_head_xent") {
      auto *acc = static_cast<double *>(S(ins, 1, size_t(3 * n) * sizeof(double)));
      double *runMax = acc, *runSum = acc + n, *picked = acc + 2 * n;
      cuda::xentStart(n, runMax, runSum);
      for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
        const int64_t cols = std::min(chunk, vocab - v0);
        gemm(false, true, n, cols, dim, h, 0, table + size_t(v0 * dim) * elem, 0, 0.0f, logits,
             0, 1);
        cuda::xentChunk(logits, targets, n, cols, v0, ignore, runMax, runSum, picked, bf16);
      }
      const auto &r = *ins.results();
      cuda::xentFinish(targets, n, ignore, runMax, runSum, picked, F(r.Get(0)), F(r.Get(1)),
                       F(r.Get(2)));
      return "";
    }
    const float *lse = F(arg(3)), *dloss = F(arg(4));
    float *dh = F(ins.results()->Get(0)), *dtable = F(ins.results()->Get(1));
    DeviceBuffer &gCast = scratch[{&ins, 2}];
    for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
      const int64_t cols = std::min(chunk, vocab - v0);
      gemm(false, true, n, cols, dim, h, 0, table + size_t(v0 * dim) * elem, 0, 0.0f, logits, 0,
           1);
      // bf16: the kernel writes G as the matmuls' bf16 operand (no cast pass over the chunk).
      void *g16 = bf16 ? gCast.ensure(size_t(n * cols) * 2, capturing) : nullptr;
      cuda::xentBackwardChunk(logits, targets, lse, dloss, n, cols, v0, ignore, g16, bf16);
      const void *g = bf16 ? g16 : logits;
      // dh (+)= G table[cols]; dtable[cols] = G^T h (every row at once: written once).
      gemm(false, false, n, dim, cols, g, 0, table + size_t(v0 * dim) * elem, 0,
           v0 == 0 ? 0.0f : 1.0f, dh, 0, 1);
      gemm(true, false, cols, dim, n, g, 0, h, 0, 0.0f, dtable + v0 * dim, 0, 1);
    }
    return "";
  }

  // As the Interpreter's scan: carried values copied into the body's arguments, the scanned
  // inputs sliced per step, stacked results written per step.
  std::string scan(const plan::Instr &ins) {
    const auto &operands = *ins.operands();
    const auto &results = *ins.results();
    const auto &args = *ins.body_args();
    const size_t carried = size_t(ins.ints()->Get(0));
    const bool reverse = ins.ints()->size() > 1 && ins.ints()->Get(1) != 0;
    const size_t scanned = operands.size() - carried;
    const int64_t count = shape(operands.Get(carried))[0];
    auto bytesOf = [&](int32_t id) { return size_t(size(id)) * sizeof(float); };
    for (size_t i = 0; i < carried; ++i)
      copy(F(args.Get(i)), F(operands.Get(i)), bytesOf(operands.Get(i)));
    for (int64_t step = 0; step < count; ++step) {
      const int64_t s = reverse ? count - 1 - step : step;
      castHolds.clear();
      for (size_t j = 0; j < scanned; ++j) {
        int32_t x = operands.Get(carried + j), slice = args.Get(carried + j);
        int64_t n = size(slice);
        copy(F(slice), F(x) + s * n, size_t(n) * sizeof(float));
      }
      std::vector<int32_t> yielded;
      if (std::string err = exec(ins.body(), yielded); !err.empty())
        return err;
      if (yielded.size() != results.size())
        return "scan: the body yields " + std::to_string(yielded.size()) + " values, expected " +
               std::to_string(results.size());
      for (size_t r = carried; r < results.size(); ++r) {
        int64_t n = size(yielded[r]);
        copy(F(results.Get(r)) + s * n, F(yielded[r]), size_t(n) * sizeof(float));
      }
      // The new carry through temporaries: a carried value may yield another's argument.
      for (size_t i = 0; i < carried; ++i)
        copy(S(ins, i, bytesOf(args.Get(i))), F(yielded[i]), bytesOf(args.Get(i)));
      for (size_t i = 0; i < carried; ++i)
        copy(F(args.Get(i)), S(ins, i, bytesOf(args.Get(i))), bytesOf(args.Get(i)));
    }
    for (size_t i = 0; i < carried; ++i)
      copy(F(results.Get(i)), F(args.Get(i)), bytesOf(args.Get(i)));
    castHolds.clear();
    return "";
  }

  // --- the optimizer -----------------------------------------------------------------------------
  std::string applyStep(int64_t step, double lr, double weightDecay, double &gradNorm) {
    const plan::Program *apply = nullptr;
    for (const plan::Program *p : *plan.programs())
      if (str(p->name()) == "apply_step")
        apply = p;
    if (!apply)
      return "the plan has no apply_step program; recompile it with this tttc";
    if (sharded)
      sumSquaresOverRanks();
    else
      cuda::sumSquares(reinterpret_cast<const float *>(grads), int64_t(paramsBytes / sizeof(float)),
                       partials, sumSq);
    double maxNorm = 1e300;
    // Runs of consecutive parameters with the same settings, each one launch over its slots
    // (the slots' padding is zero in every region and stays zero).
    struct Run {
      size_t first = 0, end = 0;
      cuda::AdamwStep a;
    };
    std::vector<Run> runs;
    for (const plan::Instr *ins : *apply->instrs()) {
      const std::string op = str(ins->op());
      if (op == "reduce_grads")
        continue;
      if (op == "clip_global_norm") {
        maxNorm = ins->floats()->Get(0);
        continue;
      }
      if (op != "adamw")
        return "apply_step: unknown instruction '" + op + "' (plan from a newer tttc?)";
      const size_t i = size_t(ins->ints()->Get(0));
      if (i >= paramOffset.size())
        return "apply_step: parameter index out of range; the plan is corrupt";
      const auto &f = *ins->floats();
      cuda::AdamwStep a;
      a.lr = lr, a.beta1 = f.Get(0), a.beta2 = f.Get(1), a.eps = f.Get(2);
      a.weightDecay = ins->ints()->Get(1) != 0 ? weightDecay : 0.0;
      a.correction1 = 1.0 - std::pow(a.beta1, double(step));
      a.correction2 = 1.0 - std::pow(a.beta2, double(step));
      a.maxNorm = maxNorm;
      const size_t end = i + 1 < paramOffset.size() ? paramOffset[i + 1] : paramsBytes;
      if (!runs.empty() && runs.back().end == paramOffset[i] &&
          std::memcmp(&runs.back().a, &a, sizeof a) == 0)
        runs.back().end = end;
      else
        runs.push_back({paramOffset[i], end, a});
    }
    // ZeRO-1: each run clipped to this rank's slice, whose moments start at moments[0]; the
    // bf16 copies are cast after the gather, from the full parameters.
    const size_t lo = shardBegin, hi = shardBegin + shardBytes;
    for (const Run &r : runs) {
      const size_t off = std::max(r.first, lo), end = std::min(r.end, hi);
      if (off >= end)
        continue;
      cuda::adamw(reinterpret_cast<float *>(params + off),
                  reinterpret_cast<const float *>(grads + off),
                  reinterpret_cast<float *>(moments + (off - lo)),
                  reinterpret_cast<float *>(moments + shardBytes + (off - lo)),
                  int64_t((end - off) / sizeof(float)), r.a, sumSq,
                  bf16 && !sharded ? shadow + off / 2 : nullptr);
    }
    check(cudaGetLastError(), "apply_step kernels");
    if (sharded) {
      if (std::string err = gatherSlices(params + shardBegin, params, "parameters"); !err.empty())
        return err;
      refreshShadow();
    }
    double sum = 0;
    check(cudaMemcpyAsync(&sum, sumSq, sizeof sum, cudaMemcpyDeviceToHost, kStream),
          "gradient norm copy");
    check(cudaMemsetAsync(grads, 0, paddedBytes, kStream), "zero gradients");
    check(cudaStreamSynchronize(kStream), "apply_step");
    gradNorm = std::sqrt(sum);
    return "";
  }

  // --- ZeRO-1 ------------------------------------------------------------------------------------
  // The global norm from every rank's slice: each rank's sum (in the kernel's fixed order) is
  // all-gathered, and every rank adds the ranks' sums left to right, so all of them clip by the
  // same bitwise norm, on every run.
  void sumSquaresOverRanks() {
#if TTT_HAVE_NCCL
    const int rank = options.shardRank;
    cuda::sumSquares(reinterpret_cast<const float *>(grads + shardBegin),
                     int64_t(shardBytes / sizeof(float)), partials, rankSums + rank);
    if (!nccl)
      throw CudaError("ZeRO-1: the optimizer step before joinCollectives");
    if (ncclResult_t r = ncclAllGather(rankSums + rank, rankSums, 1, ncclDouble, nccl, kStream);
        r != ncclSuccess)
      throw CudaError(std::string("NCCL: gathering the gradient norm failed: ") +
                      ncclGetErrorString(r));
    cuda::sumInOrder(rankSums, options.shards, sumSq);
#else
    throw CudaError("ZeRO-1 needs NCCL; this ttt-run was built without it");
#endif
  }
  // Every rank's slice (shardBytes at `slice`, this rank's) into `full` (paddedBytes), in place
  // when slice == full + shardBegin.
  std::string gatherSlices(const char *slice, char *full, const char *what) {
#if TTT_HAVE_NCCL
    if (!nccl)
      return "ZeRO-1: gathering the " + std::string(what) + " before joinCollectives";
    if (ncclResult_t r = ncclAllGather(slice, full, shardBytes / sizeof(float), ncclFloat, nccl,
                                       kStream);
        r != ncclSuccess)
      return "NCCL: gathering the " + std::string(what) + " failed: " + ncclGetErrorString(r);
    return "";
#else
    (void)slice, (void)full;
    return "ZeRO-1 needs NCCL; this ttt-run was built without it (" + std::string(what) + ")";
#endif
  }
  // This rank's slice of full host tensors (parameter-table order) into dst (shardBytes).
  std::string putSlice(char *dst, const std::vector<const std::vector<float> *> &host) {
    return putRange(dst, host, shardBegin, shardBytes);
  }
  // The bytes [begin, begin + bytes) of the flat parameter space, taken from full host tensors
  // (parameter-table order), into dst.
  std::string putRange(char *dst, const std::vector<const std::vector<float> *> &host, size_t begin,
                       size_t bytes) {
    if (host.size() != paramOffset.size())
      return "expected " + std::to_string(paramOffset.size()) + " tensors, got " +
             std::to_string(host.size());
    for (size_t i = 0; i < host.size(); ++i) {
      if (host[i]->size() != paramCount[i])
        return "tensor " + std::to_string(i) + " has " + std::to_string(host[i]->size()) +
               " values, the plan's parameter has " + std::to_string(paramCount[i]);
      const size_t first = paramOffset[i], last = first + paramCount[i] * sizeof(float);
      const size_t lo = std::max(first, begin), hi = std::min(last, begin + bytes);
      if (lo < hi)
        check(cudaMemcpy(dst + (lo - begin),
                         reinterpret_cast<const char *>(host[i]->data()) + (lo - first), hi - lo,
                         cudaMemcpyHostToDevice),
              "copy to the device");
    }
    return "";
  }
  // m then v: the slices all-gathered into the gradient region (idle between steps), copied out
  // where the host wants them; the region is zero again afterwards.
  std::string gatherMoments(std::vector<std::vector<float> *> &m,
                            std::vector<std::vector<float> *> &v) {
    for (int half = 0; half < 2; ++half) {
      const char *slice = moments + size_t(half) * shardBytes;
      if (std::string err = gatherSlices(slice, grads, "AdamW moments"); !err.empty())
        return err;
      std::vector<std::vector<float> *> &host = half == 0 ? m : v;
      if (!host.empty())
        if (std::string err = get(grads, host); !err.empty())
          return err;
    }
    check(cudaMemsetAsync(grads, 0, paddedBytes, kStream), "zero gradients");
    check(cudaStreamSynchronize(kStream), "gathering the AdamW moments");
    return "";
  }

  // --- host <-> device of the long-lived regions -------------------------------------------------
  std::string put(char *region, const std::vector<const std::vector<float> *> &host) {
    return putRange(region, host, 0, paddedBytes);
  }
  std::string get(const char *region, std::vector<std::vector<float> *> &host) {
    if (host.size() != paramOffset.size())
      return "expected " + std::to_string(paramOffset.size()) + " tensors, got " +
             std::to_string(host.size());
    check(cudaStreamSynchronize(kStream), "the device's work");
    for (size_t i = 0; i < host.size(); ++i) {
      host[i]->resize(paramCount[i]);
      check(cudaMemcpy(host[i]->data(), region + paramOffset[i], paramCount[i] * sizeof(float),
                       cudaMemcpyDeviceToHost),
            "copy from the device");
    }
    return "";
  }
  void refreshShadow() {
    if (bf16)
      cuda::castToBf16(reinterpret_cast<const float *>(params), int64_t(paramsBytes / 4), shadow);
  }
};

CudaSession::CudaSession() = default;
CudaSession::~CudaSession() = default;

std::unique_ptr<CudaSession> CudaSession::open(const plan::Plan &plan, const CudaOptions &options,
                                               std::string &error) {
  std::unique_ptr<CudaSession> s(new CudaSession());
  s->impl_ = std::make_unique<Impl>(plan);
  s->impl_->options = options;
  try {
    error = s->impl_->open();
  } catch (const std::exception &e) {
    error = e.what();
  }
  if (!error.empty())
    return nullptr;
  return s;
}

namespace {
template <typename F> std::string guarded(F &&f) {
  try {
    return f();
  } catch (const std::exception &e) {
    return std::string("cuda: ") + e.what();
  }
}
} // namespace

std::string CudaSession::setParams(const std::vector<const std::vector<float> *> &p) {
  return guarded([&] {
    std::string err = impl_->put(impl_->params, p);
    if (err.empty())
      impl_->refreshShadow();
    return err;
  });
}
std::string CudaSession::getParams(std::vector<std::vector<float> *> &p) {
  return guarded([&] { return impl_->get(impl_->params, p); });
}
std::string CudaSession::setMoments(const std::vector<const std::vector<float> *> &m,
                                    const std::vector<const std::vector<float> *> &v) {
  return guarded([&] {
    Impl &i = *impl_;
    if (i.sharded) {
      std::string err = i.putSlice(i.moments, m);
      return err.empty() ? i.putSlice(i.moments + i.shardBytes, v) : err;
    }
    std::string err = i.put(i.moments, m);
    return err.empty() ? i.put(i.moments + i.shardBytes, v) : err;
  });
}
std::string CudaSession::getMoments(std::vector<std::vector<float> *> &m,
                                    std::vector<std::vector<float> *> &v) {
  return guarded([&] {
    Impl &i = *impl_;
    if (i.sharded)
      return i.gatherMoments(m, v);
    std::string err = i.get(i.moments, m);
    return err.empty() ? i.get(i.moments + i.shardBytes, v) : err;
  });
}
std::string CudaSession::setGrads(const std::vector<const std::vector<float> *> &g) {
  return guarded([&] { return impl_->put(impl_->grads, g); });
}
std::string CudaSession::getGrads(std::vector<std::vector<float> *> &g) {
  return guarded([&] { return impl_->get(impl_->grads, g); });
}
std::string CudaSession::run(const std::string &program, const NamedInts &inputs,
                             const NamedTensors<float> *states, NamedTensors<float> &outputs,
                             double gradScale, bool lastMicroStep, int64_t carriedSlot) {
  std::string err = guarded([&] {
    return impl_->run(program, inputs, states, outputs, gradScale, lastMicroStep, carriedSlot);
  });
  return err.empty() ? err : "program " + program + " (cuda): " + err;
}
std::string CudaSession::setCarried(int64_t slot, const NamedTensors<float> &states) {
  return guarded([&]() -> std::string {
    Impl &i = *impl_;
    if (slot < 0 || slot >= i.options.carriedSlots)
      return "setCarried: no micro-batch slot " + std::to_string(slot) + " on the device";
    for (const auto &[name, values] : states)
      if (size_t count = 0; char *dev = i.carriedState(slot, name, count)) {
        if (values.size() != count)
          return "setCarried: state '" + name + "' has " + std::to_string(values.size()) +
                 " values, the plan's " + std::to_string(count);
        check(cudaMemcpy(dev, values.data(), count * sizeof(float), cudaMemcpyHostToDevice),
              "copy to the device");
      }
    return "";
  });
}
std::string CudaSession::getCarried(int64_t slot, NamedTensors<float> &states) {
  return guarded([&]() -> std::string {
    Impl &i = *impl_;
    if (slot < 0 || slot >= i.options.carriedSlots)
      return "getCarried: no micro-batch slot " + std::to_string(slot) + " on the device";
    check(cudaStreamSynchronize(kStream), "the device's work");
    for (const auto &[name, where] : i.carriedLayout) {
      size_t count = 0;
      const char *dev = i.carriedState(slot, name, count);
      std::vector<float> &host = states[name];
      host.resize(count);
      check(cudaMemcpy(host.data(), dev, count * sizeof(float), cudaMemcpyDeviceToHost),
            "copy from the device");
    }
    return "";
  });
}
std::string CudaSession::applyStep(int64_t step, double lr, double weightDecay, double &gradNorm) {
  return guarded([&] { return impl_->applyStep(step, lr, weightDecay, gradNorm); });
}
std::string CudaSession::collectiveId(std::string &id) {
#if TTT_HAVE_NCCL
  ncclUniqueId u;
  if (ncclResult_t r = ncclGetUniqueId(&u); r != ncclSuccess)
    return std::string("ncclGetUniqueId: ") + ncclGetErrorString(r);
  id.assign(u.internal, sizeof u.internal);
  return "";
#else
  (void)id;
  return "this ttt-run was built without NCCL: run one GPU per job, or rebuild with NCCL";
#endif
}
std::string CudaSession::joinCollectives(const std::string &id, int rank, int ranks) {
#if TTT_HAVE_NCCL
  ncclUniqueId u;
  if (id.size() != sizeof u.internal)
    return "NCCL: the job's id has the wrong size";
  if (impl_->sharded && (ranks != impl_->options.shards || rank != impl_->options.shardRank))
    return "ZeRO-1: the session was opened for rank " + std::to_string(impl_->options.shardRank) +
           " of " + std::to_string(impl_->options.shards) + ", not " + std::to_string(rank) +
           " of " + std::to_string(ranks);
  std::memcpy(u.internal, id.data(), sizeof u.internal);
  if (ncclResult_t r = ncclCommInitRank(&impl_->nccl, ranks, u, rank); r != ncclSuccess)
    return std::string("NCCL: joining the job's GPUs failed: ") + ncclGetErrorString(r) +
           " (NCCL_DEBUG=INFO says more)";
  // One rank has nothing to overlap: its "reduction" is a copy, cheapest done once at the end;
  // unless the per-bucket path is being timed (--comm-timeline shows its shape on one GPU).
  if ((ranks > 1 || impl_->options.commTimeline) && impl_->options.overlap)
    return guarded([&] {
      Impl &i = *impl_;
      check(cudaStreamCreateWithFlags(&i.commStream, cudaStreamNonBlocking), "NCCL stream");
      check(cudaEventCreateWithFlags(&i.forkEvent, cudaEventDisableTiming), "cudaEventCreate");
      check(cudaEventCreateWithFlags(&i.joinEvent, cudaEventDisableTiming), "cudaEventCreate");
      return std::string();
    });
  return "";
#else
  (void)id, (void)rank, (void)ranks;
  return "this ttt-run was built without NCCL: run one GPU per job, or rebuild with NCCL";
#endif
}
std::string CudaSession::averageGrads() {
#if TTT_HAVE_NCCL
  if (!impl_->nccl)
    return "NCCL: averageGrads before joinCollectives";
  Impl &i = *impl_;
  if (i.reducedInRun) { // the last micro-step averaged every bucket
    i.reducedInRun = false;
    return "";
  }
  if (i.sharded) {
    // ZeRO-1: rank r needs the average of its slice only; in place (the slice already sits at
    // grads + r x shardBytes), half the traffic of an all-reduce.
    if (ncclResult_t r = ncclReduceScatter(i.grads, i.grads + i.shardBegin,
                                           i.shardBytes / sizeof(float), ncclFloat, ncclAvg, i.nccl,
                                           kStream);
        r != ncclSuccess)
      return std::string("NCCL: the gradient reduce-scatter failed: ") + ncclGetErrorString(r);
    return "";
  }
  // One reduction over the whole gradient region (the slots' padding is zero on every rank).
  if (ncclResult_t r = ncclAllReduce(i.grads, i.grads, i.paramsBytes / sizeof(float), ncclFloat,
                                     ncclAvg, i.nccl, kStream);
      r != ncclSuccess)
    return std::string("NCCL: the gradient all-reduce failed: ") + ncclGetErrorString(r);
  return "";
#else
  return "this ttt-run was built without NCCL: run one GPU per job, or rebuild with NCCL";
#endif
}

CudaMemory CudaSession::memory() const {
  CudaMemory m;
  const Impl &i = *impl_;
  m.params = m.grads = double(i.paddedBytes);
  m.moments = 2.0 * double(i.shardBytes);
  m.checkpoints = double(i.checkpointsBytes);
  m.arena = double(i.arenaBytes);
  m.bf16Params = i.bf16 ? double(align256(i.paramsBytes / 2)) : 0;
  for (const auto &[key, buf] : i.scratch)
    m.scratch += double(buf.bytes);
  m.scratch += double(i.castA.bytes + i.castB.bytes);
  m.workspace = double(32 << 20);
  m.carried = double(i.carriedSlotBytes) * double(std::max<int64_t>(i.options.carriedSlots, 0));
  return m;
}
double CudaSession::deviceBytesInUse() const {
  size_t freeBytes = 0, total = 0;
  if (cudaMemGetInfo(&freeBytes, &total) != cudaSuccess)
    return 0;
  return double(total - freeBytes); // this process's allocations plus the context
}
dist::CommTimeline CudaSession::commTimeline() const { return impl_->timeline; }

std::vector<KernelTime> CudaSession::profile() const {
  std::vector<KernelTime> rows;
  for (const auto &[key, k] : impl_->profileTimes)
    rows.push_back(k);
  std::sort(rows.begin(), rows.end(),
            [](const KernelTime &a, const KernelTime &b) { return a.ms > b.ms; });
  return rows;
}
bool CudaSession::bf16() const { return impl_->bf16; }
bool CudaSession::overlapsReduction() const { return impl_->commStream != nullptr; }

// --- the per-program adapter (CudaRunner.h) ------------------------------------------------------
struct CudaProgramRunner::State {
  const plan::Plan &plan;
  const plan::Program &program;
  std::unique_ptr<CudaSession> session;
  std::string openError;
  State(const plan::Plan &p, const plan::Program &prog) : plan(p), program(prog) {}
};

CudaProgramRunner::CudaProgramRunner(const plan::Plan &plan, const plan::Program &program)
    : state_(std::make_unique<State>(plan, program)) {}
CudaProgramRunner::~CudaProgramRunner() = default;

std::string CudaProgramRunner::run(const NamedTensors<float> &params, const NamedInts &inputs,
                                   NamedTensors<float> &outputs,
                                   const GradientSink<float> *gradients,
                                   const NamedTensors<float> *states) {
  State &s = *state_;
  if (!s.session) {
    s.session = CudaSession::open(s.plan, CudaOptions{}, s.openError);
    if (!s.session)
      return s.openError;
  }
  std::vector<const std::vector<float> *> host;
  for (const plan::Parameter *p : *s.plan.parameters()) {
    auto it = params.find(str(p->name()));
    if (it == params.end())
      return "param: parameter '" + str(p->name()) + "' is missing";
    host.push_back(&it->second);
  }
  if (std::string err = s.session->setParams(host); !err.empty())
    return err;
  const bool accumulate = gradients && gradients->accumulators;
  std::vector<std::vector<float> *> acc;
  if (accumulate) {
    std::vector<const std::vector<float> *> in;
    for (const plan::Parameter *p : *s.plan.parameters()) {
      auto it = gradients->accumulators->find(str(p->name()));
      if (it == gradients->accumulators->end())
        return "accumulate_grad: no accumulator for '" + str(p->name()) + "'";
      in.push_back(&it->second);
      acc.push_back(&it->second);
    }
    if (std::string err = s.session->setGrads(in); !err.empty())
      return err;
  }
  if (std::string err = s.session->run(str(s.program.name()), inputs, states, outputs,
                                       gradients ? gradients->scale : 1.0);
      !err.empty())
    return err;
  if (accumulate) {
    if (std::string err = s.session->getGrads(acc); !err.empty())
      return err;
    // The device ran the whole program: each bucket's hook runs after it, in order.
    if (gradients->onBucketReady)
      for (const plan::Instr *ins : *s.program.instrs())
        if (str(ins->op()) == "bucket_ready")
          gradients->onBucketReady(ins->ints()->Get(0), lines(str(ins->name())));
  }
  return "";
}
} // namespace ttt::exec
