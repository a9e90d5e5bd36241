// Matmuls of the CUDA backend through cuBLASLt: row-major, batched with element strides, fp32
// results, operands in fp32 (fp32 mode: no TF32, CUBLAS_COMPUTE_32F) or bf16 (bf16 mode: fp32
// accumulation). The descriptors and the algorithm of each distinct shape are prepared the first
// time it runs and reused (a heuristic's first choice: fixed for a given GPU and cuBLASLt, so
// the results are repeatable run to run). Every call runs on the caller's stream and can be
// captured in a CUDA graph (the workspace is allocated once, up front).
//
// Plain C++ header (no CUDA types): the executor is compiled by the host compiler.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace ttt::cuda {
enum class MatmulOperands { f32, bf16 };

// C[batch][m, n] = op(A)[m, k] op(B)[k, n] (+ C when beta = 1); strides in elements between
// the batch's matrices (0: one matrix shared by the whole batch).
struct MatmulShape {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  int64_t strideA = 0, strideB = 0, strideC = 0;
  float beta = 0.0f;
  MatmulOperands operands = MatmulOperands::f32;
  auto key() const {
    return std::make_tuple(transA, transB, m, n, k, batch, strideA, strideB, strideC, beta,
                           int(operands));
  }
};

class Matmuls {
public:
  /// Creates the cuBLASLt handle and a workspace; throws std::runtime_error on failure.
  Matmuls();
  ~Matmuls();
  Matmuls(const Matmuls &) = delete;
  Matmuls &operator=(const Matmuls &) = delete;
  /// a, b: device pointers of the operand type; c: fp32. `stream`: a cudaStream_t. Throws
  /// std::runtime_error with the shape when cuBLASLt has no algorithm or fails.
  void run(const MatmulShape &s, const void *a, const void *b, float *c, void *stream);
  /// Distinct shapes prepared so far.
  size_t prepared() const { return plans_.size(); }

private:
  struct Plan;
  Plan &prepare(const MatmulShape &s, uint32_t alignA, uint32_t alignB, uint32_t alignC);
  void *handle_ = nullptr;
  void *workspace_ = nullptr;
  size_t workspaceBytes_ = 0;
  using Key = std::tuple<decltype(MatmulShape().key()), uint32_t, uint32_t, uint32_t>;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

/// y[i] = bf16(x[i]) (round to nearest even); y is __nv_bfloat16*.
void castToBf16(const float *x, int64_t n, void *y);
} // namespace ttt::cuda
