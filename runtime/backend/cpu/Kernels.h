// The CPU backend's kernels: a plain, readable reference of every primitive of docs/primitives.md,
// templated on the float type (float or double). One source file per family.
// All tensors are dense, row-major and contiguous; shapes are passed explicitly.
// Shapes the compiler should never emit (broadcast mismatch, bad permutation or axis, a range
// outside its axis, odd rope head dim) throw std::invalid_argument; bad data (token or target ids)
// is reported through the returned string. Outputs may alias an input of the same shape for the
// elementwise (non-broadcast operand), norm, rope, tril and unary kernels; nowhere else.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ttt::cpu {
using Shape = std::vector<int64_t>;

int64_t numElements(const Shape &shape);

// --- gather (Embedding.cpp) ---------------------------------------------------------------------
// y[n, :] = table[tokens[n], :]. Returns "" or an error naming the bad token and its position.
template <typename T>
std::string embedding(const int32_t *tokens, int64_t n, const T *table, int64_t vocab,
                      int64_t dim, T *y);

// --- matmul (Matmul.cpp, OpenBLAS) --------------------------------------------------------------
// For b in [0, batch): C_b = alpha * op(A_b) * op(B_b) + (accumulate ? C_b : 0), where
// op(A_b) is M x K, op(B_b) is K x N, C_b is M x N; A_b = A + b * strideA (strideA = 0 broadcasts).
struct MatmulShape {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool transA = false, transB = false;
  int64_t strideA = 0, strideB = 0, strideC = 0; // in elements
};
template <typename T>
void matmul(const MatmulShape &s, T alpha, const T *a, const T *b, bool accumulate, T *c);

// --- norms (Norms.cpp) --------------------------------------------------------------------------
template <typename T>
void rmsNorm(const T *x, const T *w, int64_t rows, int64_t dim, double eps, T *y);
template <typename T>
void layerNorm(const T *x, const T *w, const T *b, int64_t rows, int64_t dim, double eps, T *y);

// --- conv (CausalConv.cpp) ----------------------------------------------------------------------
// history (optional, [batch, width - 1, dim]): the inputs before t = 0 (zeros without it).
template <typename T>
void causalConv(const T *x, const T *kernel, const T *bias, int64_t batch, int64_t seq, int64_t dim,
                int64_t width, T *y, const T *history = nullptr);

// --- rope (Rope.cpp) ----------------------------------------------------------------------------
// x, y: [batch, seq, heads, headDim]; position of token t is t % period.
template <typename T>
void rope(const T *x, int64_t batch, int64_t seq, int64_t heads, int64_t headDim, int64_t period,
          double theta, T *y);

// --- elementwise (Elementwise.cpp) --------------------------------------------------------------
enum class BinaryOp { add, sub, mul, div, max };
// Numpy broadcasting; ranks are right-aligned, rank <= 6; `out` has the broadcast shape.
template <typename T>
void binary(BinaryOp op, const T *a, const Shape &shapeA, const T *b, const Shape &shapeB, T *out);
Shape broadcastShape(const Shape &a, const Shape &b); // empty Shape{} + error if incompatible

enum class UnaryOp {
  neg, exp, log, sqrt, rsqrt, reciprocal, sigmoid, silu, gelu_tanh, relu, scale, add_scalar
};
template <typename T> void unary(UnaryOp op, const T *x, int64_t n, double alpha, T *y);

// --- reduce (Reduce.cpp) ------------------------------------------------------------------------
enum class ReduceOp { sum, mean, max };
template <typename T> void reduceLast(ReduceOp op, const T *x, int64_t rows, int64_t cols, T *y);

// --- the plan's kind names of the ops above (OpNames.cpp), in enum order --------------------------
const std::vector<std::pair<std::string, BinaryOp>> &binaryOpNames();
const std::vector<std::pair<std::string, UnaryOp>> &unaryOpNames();
const std::vector<std::pair<std::string, ReduceOp>> &reduceOpNames();
// false when `name` is not a kind of that op.
bool binaryOpByName(const std::string &name, BinaryOp &op);
bool unaryOpByName(const std::string &name, UnaryOp &op);
bool reduceOpByName(const std::string &name, ReduceOp &op);

// --- layout (Layout.cpp) ------------------------------------------------------------------------
template <typename T>
void transpose(const T *x, const Shape &shape, const std::vector<int> &perm, T *y);
template <typename T>
void slice(const T *x, const Shape &shape, int axis, int64_t start, int64_t size, T *y);
template <typename T>
void insert(const T *src, const Shape &dstShape, int axis, int64_t start, int64_t size, T *dst);
template <typename T> void tril(const T *x, int64_t matrices, int64_t n, T *y);
template <typename T> void fill(T *y, int64_t n, double value);

// --- loss (Loss.cpp) ----------------------------------------------------------------------------
// Returns "" or an error naming a target outside [0, vocab).
template <typename T>
std::string softmaxXent(const T *logits, const int32_t *targets, int64_t n, int64_t vocab,
                        int64_t ignoreToken, T *loss, T *mask);
template <typename T>
void maskedMean(const T *loss, const T *mask, int64_t batch, int64_t seq, T *out);
} // namespace ttt::cpu
