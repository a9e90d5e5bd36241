// cuBLASLt matmuls (Matmul.h). Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T,
// so cuBLASLt's A is our B and its B our A.
#include "runtime/backend/cuda/Matmul.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <stdexcept>

namespace ttt::cuda {
namespace {
constexpr size_t kWorkspaceBytes = size_t(32) << 20; // cuBLAS's recommendation for Hopper

void check(cublasStatus_t s, const char *what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + ": cuBLASLt status " + std::to_string(int(s)) +
                             " (" + cublasLtGetStatusString(s) + ")");
}

std::string describe(const MatmulShape &s) {
  return std::string(s.operands == MatmulOperands::bf16 ? "bf16" : "fp32") + " matmul [" +
         std::to_string(s.batch) + " x " + std::to_string(s.m) + " x " + std::to_string(s.k) +
         "] x [" + std::to_string(s.k) + " x " + std::to_string(s.n) + "]" +
         (s.transA ? " A^T" : "") + (s.transB ? " B^T" : "");
}

// The largest power of two (up to 256) dividing the address: what the algorithm may assume.
uint32_t alignmentOf(const void *p) {
  uint32_t a = 256;
  while (a > 1 && reinterpret_cast<uintptr_t>(p) % a != 0)
    a /= 2;
  return a;
}
} // namespace

struct Matmuls::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (a)
      cublasLtMatrixLayoutDestroy(a);
    if (b)
      cublasLtMatrixLayoutDestroy(b);
    if (c)
      cublasLtMatrixLayoutDestroy(c);
    if (op)
      cublasLtMatmulDescDestroy(op);
  }
};

Matmuls::Matmuls() {
  cublasLtHandle_t h = nullptr;
  check(cublasLtCreate(&h), "cublasLtCreate");
  handle_ = h;
  if (cudaMalloc(&workspace_, kWorkspaceBytes) != cudaSuccess)
    throw std::runtime_error("cudaMalloc of the cuBLASLt workspace (32 MiB) failed");
  workspaceBytes_ = kWorkspaceBytes;
}

Matmuls::~Matmuls() {
  plans_.clear();
  if (workspace_)
    cudaFree(workspace_);
  if (handle_)
    cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

Matmuls::Plan &Matmuls::prepare(const MatmulShape &s, uint32_t alignA, uint32_t alignB,
                                uint32_t alignC) {
  auto &slot = plans_[std::make_tuple(s.key(), alignA, alignB, alignC)];
  if (slot)
    return *slot;
  auto plan = std::make_unique<Plan>();
  const cudaDataType_t in = s.operands == MatmulOperands::bf16 ? CUDA_R_16BF : CUDA_R_32F;
  check(cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
  const cublasOperation_t opA = s.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opB = s.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA),
        "matmul desc transa");
  check(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB),
        "matmul desc transb");
  // Stored (pre-op) column-major shapes: cuBLASLt's A = our B, its B = our A.
  const uint64_t aRows = uint64_t(s.transB ? s.k : s.n), aCols = uint64_t(s.transB ? s.n : s.k);
  const uint64_t bRows = uint64_t(s.transA ? s.m : s.k), bCols = uint64_t(s.transA ? s.k : s.m);
  check(cublasLtMatrixLayoutCreate(&plan->a, in, aRows, aCols, int64_t(aRows)), "layout A");
  check(cublasLtMatrixLayoutCreate(&plan->b, in, bRows, bCols, int64_t(bRows)), "layout B");
  check(cublasLtMatrixLayoutCreate(&plan->c, CUDA_R_32F, uint64_t(s.n), uint64_t(s.m), s.n),
        "layout C");
  if (s.batch > 1) {
    const int32_t count = int32_t(s.batch);
    auto batched = [&](cublasLtMatrixLayout_t l, int64_t stride) {
      check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                             sizeof count),
            "layout batch");
      check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                             &stride, sizeof stride),
            "layout stride");
    };
    batched(plan->a, s.strideB);
    batched(plan->b, s.strideA);
    batched(plan->c, s.strideC);
  }
  cublasLtMatmulPreference_t pref = nullptr;
  check(cublasLtMatmulPreferenceCreate(&pref), "matmul preference");
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &workspaceBytes_, sizeof workspaceBytes_),
        "matmul preference workspace");
  // What the chosen algorithm may assume of the pointers (cuBLASLt's A is our B).
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignB},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignA},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignC},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignC}};
  for (const auto &[attr, value] : alignments)
    check(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof value),
          "matmul preference alignment");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
      static_cast<cublasLtHandle_t>(handle_), plan->op, plan->a, plan->b, plan->c, plan->c, pref,
      1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0)
    throw std::runtime_error("cuBLASLt has no algorithm for the " + describe(s));
  plan->algo = result.algo;
  slot = std::move(plan);
  return *slot;
}

void Matmuls::run(const MatmulShape &shape, const void *a, const void *b, float *c,
                  void *stream) {
  if (shape.m == 0 || shape.n == 0 || shape.batch == 0)
    return;
  MatmulShape s = shape;
  // One matrix B for a batch of A's stacked rows: one GEMM with batch x m rows.
  if (s.batch > 1 && s.strideB == 0 && !s.transA && s.strideA == s.m * s.k &&
      s.strideC == s.m * s.n) {
    s.m *= s.batch;
    s.batch = 1;
    s.strideA = s.strideC = 0;
  }
  const size_t elem = s.operands == MatmulOperands::bf16 ? 2 : 4;
  // A shared operand in a real batch (stride 0): one call per matrix of the batch.
  if (s.batch > 1 && (s.strideA == 0 || s.strideB == 0 || s.strideC == 0)) {
    MatmulShape one = s;
    one.batch = 1;
    for (int64_t i = 0; i < s.batch; ++i)
      run(one, static_cast<const char *>(a) + size_t(i * s.strideA) * elem,
          static_cast<const char *>(b) + size_t(i * s.strideB) * elem, c + i * s.strideC,
          stream);
    return;
  }
  Plan &plan = prepare(s, alignmentOf(a), alignmentOf(b), alignmentOf(c));
  const float alpha = 1.0f, beta = s.beta;
  check(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), plan.op, &alpha, b, plan.a, a,
                       plan.b, &beta, c, plan.c, c, plan.c, &plan.algo, workspace_,
                       workspaceBytes_, static_cast<cudaStream_t>(stream)),
        describe(s).c_str());
}
} // namespace ttt::cuda
