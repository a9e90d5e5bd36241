// `ttt-run kernel-check`: every CUDA kernel launcher (runtime/backend/cuda/Kernels.h) against
// fp64 references computed by the CPU backend (runtime/backend/cpu) on the build machine.
//
//   prepare (any build): makeCases() draws fresh random inputs per case (seeded; never all zeros;
//     valid token ids and targets with some ignored; positive values where a kernel needs them),
//     rounds them to the values the device gets (fp32, or bf16-exact for bf16 cases), and runs the
//     CPU kernels in double on exactly those values: the references. writeCases() stores them.
//   check (GPU machine): readCases(), then checkCase() per case with a Device: the device runs the
//     case twice; every output is compared with its reference by norm,
//     ||device - ref|| / ||ref|| (absolute when ||ref|| = 0), against the case's mode tolerance
//     (fp32 1e-5, bf16 1e-2); a NaN or Inf fails, and the two runs must agree bit for bit.
//
// Case kinds are the launchers: one `kind` string each (kKinds). A kind with no launcher on a
// device (Device::unsupported) is reported as skipped, never as passed. The "matmul" kind is the
// hook for runtime/backend/cuda/Matmul.h: its cases (fp32 and bf16 modes) are generated and
// referenced here already; the CUDA side answers "no launcher" until it is wired in
// KernelCheckCuda.cpp (see the note there).
//
// Files: DIR/index.json (format, seed, tolerances, and per case its kind, mode, params and the
// tensors' names, dtypes, shapes and byte ranges) and DIR/cases/NNN-NAME.bin (the case's inputs,
// then its f64 references, raw little-endian), each with an fnv1a64 checksum in the index.
#pragma once

#include "runtime/backend/cpu/Fused.h"
#include "runtime/backend/cpu/InnerLoop.h"
#include "runtime/backend/cpu/Kernels.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ttt::kcheck {
using cpu::Shape;

enum class Mode { fp32, bf16 };
const char *modeName(Mode mode);
/// The relative error by norm a case of this mode may have: fp32 1e-5, bf16 1e-2.
double tolerance(Mode mode);

enum class DType { f32, i32, f64 };
const char *dtypeName(DType dtype);

struct Tensor {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  std::vector<float> f32;   // dtype f32 (inputs)
  std::vector<int32_t> i32; // dtype i32 (token ids, targets)
  std::vector<double> f64;  // dtype f64 (references)
  int64_t size() const { return cpu::numElements(shape); }
};

struct Case {
  std::string name;        // unique, starts with the kind: "unary.silu", "rms_norm", ...
  std::string kind;        // the launcher family (kKinds)
  Mode mode = Mode::fp32;
  std::string desc;        // shapes and parameters, short (the table's "shapes" column)
  nlohmann::json params = nlohmann::json::object(); // kind-specific scalars, ops, shapes
  std::vector<Tensor> inputs;  // f32 or i32: exactly what the device gets
  std::vector<Tensor> outputs; // f64: the CPU backend in double, from those inputs

  /// The input or output called `name`; throws std::invalid_argument if there is none.
  const Tensor &input(const std::string &name) const;
  const Tensor &output(const std::string &name) const;
};

/// Every kind, and the CUDA launcher(s) it exercises.
struct KindInfo {
  const char *kind;
  const char *launchers;
};
extern const std::vector<KindInfo> kKinds;

/// All cases, inputs drawn from `seed`, references computed (CPU backend, double). Throws
/// std::runtime_error if a reference is not finite.
std::vector<Case> makeCases(uint64_t seed);

/// Runs a case's kernels on the CPU backend in T: the output names, shapes and values, in the
/// case's output order. Throws std::runtime_error on a kernel error. T = double gives the
/// references; T = float is the CPU backend's fp32 result (the test of the comparison logic).
template <typename T> struct CpuOutputs {
  std::vector<std::string> names;
  std::vector<Shape> shapes;
  std::vector<std::vector<T>> values;
};
template <typename T> CpuOutputs<T> evalOnCpu(const Case &c);

/// A "matmul" case's product as the CPU backend computes it: c = op(a) op(b) with a [..., M, K]
/// ([..., K, M] with trans_a), b of rank 2 (one matrix for every batch: strideB 0) or with a's
/// batch dims, c [..., M, N]; element strides between the batch's matrices. `outShape` gets c's
/// shape. Throws std::invalid_argument on operand shapes that do not fit.
cpu::MatmulShape matmulShape(const Case &c, Shape *outShape = nullptr);

/// An "inner_loop_fwd" / "inner_loop_bwd" case's shape: from q's shape, [n, B, H, b, f], or with
/// the param "token_major" (absent: false) [B, n, b, H, f]; params "group", "eps".
cpu::InnerLoopShape innerLoopShape(const Case &c);

/// A "fused_elementwise" case's steps (params "steps": op, 3 slots, alpha each), parsed as the
/// plan's are; throws std::runtime_error on a bad step.
std::vector<cpu::FusedStep> fusedSteps(const Case &c);

/// DIR/index.json and DIR/cases/*.bin. DIR is created; an existing kernel-check DIR is replaced;
/// any other non-empty DIR is refused. `meta` is stored in the index as "created_by". Returns the
/// total size in bytes. Throws std::runtime_error naming the file on failure.
uint64_t writeCases(const std::string &dir, const std::vector<Case> &cases, uint64_t seed,
                    const nlohmann::json &meta);
/// Reads DIR back (sizes and checksums verified). Throws std::runtime_error naming the file.
std::vector<Case> readCases(const std::string &dir);

/// Where a case runs: the CUDA launchers (KernelCheckCuda.cpp) or, in tests, the CPU backend in
/// fp32 (CpuFloatDevice).
class Device {
public:
  virtual ~Device() = default;
  virtual std::string description() const = 0;
  /// "" when the device has a launcher for this case's kind; otherwise why not (then skipped).
  virtual std::string unsupported(const Case &) const { return ""; }
  /// Runs the case once on its inputs: one float vector per output, in c.outputs order. "" or an
  /// error (one line).
  virtual std::string run(const Case &c, std::vector<std::vector<float>> &outputs) = 0;
};

/// The CPU backend in fp32 (evalOnCpu<float>): the comparison logic's test device.
class CpuFloatDevice : public Device {
public:
  std::string description() const override { return "CPU backend, fp32"; }
  std::string run(const Case &c, std::vector<std::vector<float>> &outputs) override;
};

/// The CUDA launchers on GPU 0. Null with `error` set when this build has no CUDA backend
/// (`*noBackend` = true) or no GPU can be used.
std::unique_ptr<Device> makeCudaDevice(std::string &error, bool *noBackend = nullptr);

// --- `kernel-check time`: the fused inner loop at training shapes -------------------------------
struct InnerLoopTimingShape {
  std::string name;
  int64_t n = 0, batch = 0, heads = 0, miniBatch = 16, headDim = 0, group = 4;
};
/// One kernel variant at one shape: median milliseconds of the forward and the backward (CUDA
/// events around each launch, after warm-up runs), and how far the TensorCore outputs are from the
/// Exact ones (relative by norm; -1 for the Exact rows).
struct InnerLoopTiming {
  std::string shape, math; // "exact", "tensor-core" (or "tensor-core (fell back)"), or
                           // "tensor-core, cache" (with the inner-loop cache of bf16 plans)
  double fwdMs = 0, bwdMs = 0;
  double diffO = -1, diffDq = -1, diffDk = -1, diffDW0 = -1;
};
/// Times both variants on GPU 0 with random inputs drawn on the host (seeded, no files). Returns
/// "" or an error (one line); no CUDA backend: the same error as makeCudaDevice.
std::string timeInnerLoop(const InnerLoopTimingShape &shape, int warmup, int runs, uint64_t seed,
                          std::vector<InnerLoopTiming> &rows);

// --- comparison ---------------------------------------------------------------------------------
struct OutputResult {
  std::string name;
  double relError = 0;  // ||got - ref|| / ||ref||, or ||got - ref|| when ||ref|| = 0; inf if bad
  double refNorm = 0;
  bool absolute = false;  // the reference norm was 0
  int64_t nonFinite = 0;  // NaN or Inf values in the device result
  bool bitwise = true;    // both runs gave the same bits
  std::string error;      // e.g. a size mismatch
};

enum class Status { pass, fail, skip };
const char *statusName(Status status);

struct CaseResult {
  std::string name, kind, desc;
  Mode mode = Mode::fp32;
  double tolerance = 0;
  Status status = Status::fail;
  std::vector<OutputResult> outputs;
  std::string worstOutput; // the output with the largest error (or the first bad one)
  double worstError = 0;
  bool deterministic = true;
  std::string note;        // why it failed or was skipped
};

/// Judges one case from the results of two runs (each one vector per output): finite, within the
/// tolerance of the case's mode, and bit-identical. `second` may be null (no determinism check).
CaseResult judge(const Case &c, const std::vector<std::vector<float>> &first,
                 const std::vector<std::vector<float>> *second);
/// Runs the case on the device `runs` times (1 or 2) and judges it; a run error fails the case, an
/// unsupported kind skips it.
CaseResult checkCase(const Case &c, Device &device, int runs = 2);

struct Summary {
  int pass = 0, fail = 0, skip = 0;
  bool deterministic = true;
  double worstError[2] = {0, 0}; // per mode, over passed and failed cases
  std::string worstCase[2];
};
Summary summarize(const std::vector<CaseResult> &results);

/// The table: a header, then one line per case.
std::string tableHeader();
std::string tableLine(const CaseResult &r);
/// One summary line ("kernel-check: N cases: ... pass, ... FAIL, ...").
std::string summaryLine(const Summary &s);
nlohmann::ordered_json toJson(const std::vector<CaseResult> &results, const Summary &s);
} // namespace ttt::kcheck
