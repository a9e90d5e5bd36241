// The fused kernels (Fused.h). fused_elementwise walks the result in blocks of kBlock elements;
// each step runs over the block with the kernel of its unfused primitive (so its rounding is
// the same), the block staying in cache. The lm_head kernels hold [kRows, chunk] logits at once.
#include "runtime/backend/cpu/Fused.h"

#include "runtime/backend/cpu/Backward.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

namespace ttt::cpu {
namespace {
constexpr int64_t kBlock = 1024;
constexpr int64_t kRows = 256;

} // namespace

std::string parseFusedSteps(const std::vector<std::string> &names, const int64_t *args,
                            const double *alphas, int64_t inputs, std::vector<FusedStep> &steps) {
  steps.clear();
  for (size_t j = 0; j < names.size(); ++j) {
    FusedStep s;
    const std::string &name = names[j];
    int arity;
    if (binaryOpByName(name, s.binary)) {
      s.kind = FusedStep::Kind::binary;
      arity = 2;
    } else if (unaryOpByName(name, s.unary)) {
      s.kind = FusedStep::Kind::unary;
      arity = 1;
    } else if (name.size() > 4 && name.compare(name.size() - 4, 4, "_bwd") == 0 &&
               unaryOpByName(name.substr(0, name.size() - 4), s.unary)) {
      s.kind = FusedStep::Kind::unaryBackward;
      arity = 3;
    } else {
      return "fused_elementwise: step " + std::to_string(j) + " has the unknown op '" + name + "'";
    }
    for (int a = 0; a < 3; ++a) {
      s.args[a] = args[3 * j + a];
      if ((a < arity) != (s.args[a] >= 0) || s.args[a] >= inputs + int64_t(j))
        return "fused_elementwise: step " + std::to_string(j) + " ('" + name +
               "') reads a slot that is not an input or an earlier step";
    }
    s.alpha = alphas[j];
    steps.push_back(s);
  }
  if (steps.empty())
    return "fused_elementwise: no steps";
  return "";
}

template <typename T>
void fusedElementwise(const std::vector<FusedStep> &steps, const std::vector<const T *> &inputs,
                      const std::vector<Shape> &inputShapes, const Shape &outShape, T *out) {
  const int64_t total = numElements(outShape);
  const size_t nIn = inputs.size(), rank = outShape.size();
  // Per broadcast input: its element stride along each output dimension (0 where it repeats).
  std::vector<std::vector<int64_t>> strides(nIn);
  std::vector<bool> full(nIn);
  for (size_t i = 0; i < nIn; ++i) {
    const Shape &s = inputShapes[i];
    full[i] = numElements(s) == total;
    if (full[i])
      continue;
    if (s.size() > rank)
      throw std::invalid_argument("fused_elementwise: an input does not broadcast to the result");
    strides[i].assign(rank, 0);
    int64_t stride = 1;
    for (size_t k = 0; k < s.size(); ++k) {
      const int64_t d = s[s.size() - 1 - k], o = outShape[rank - 1 - k];
      if (d != 1 && d != o)
        throw std::invalid_argument("fused_elementwise: an input does not broadcast to the result");
      strides[i][rank - 1 - k] = d == 1 ? 0 : stride;
      stride *= d;
    }
  }
  std::vector<std::vector<T>> scratch(nIn + steps.size(), std::vector<T>(size_t(kBlock)));
  std::vector<const T *> slot(nIn + steps.size());
  for (int64_t o = 0; o < total; o += kBlock) {
    const int64_t len = std::min(kBlock, total - o);
    for (size_t i = 0; i < nIn; ++i) {
      if (full[i]) {
        slot[i] = inputs[i] + o;
        continue;
      }
      T *dst = scratch[i].data();
      for (int64_t e = 0; e < len; ++e) {
        int64_t index = o + e, offset = 0;
        for (size_t d = rank; d-- > 0;) {
          offset += (index % outShape[d]) * strides[i][d];
          index /= outShape[d];
        }
        dst[e] = inputs[i][offset];
      }
      slot[i] = dst;
    }
    for (size_t j = 0; j < steps.size(); ++j) {
      const FusedStep &s = steps[j];
      T *y = j + 1 == steps.size() ? out + o : scratch[nIn + j].data();
      const T *a = slot[s.args[0]];
      switch (s.kind) {
      case FusedStep::Kind::binary:
        binary<T>(s.binary, a, Shape{len}, slot[s.args[1]], Shape{len}, y);
        break;
      case FusedStep::Kind::unary:
        unary<T>(s.unary, a, len, s.alpha, y);
        break;
      case FusedStep::Kind::unaryBackward:
        unaryBackward<T>(s.unary, a, slot[s.args[1]], slot[s.args[2]], len, s.alpha, y);
        break;
      }
      slot[nIn + j] = y;
    }
  }
}

namespace {
template <typename T>
std::string checkTargets(const char *kernel, const int32_t *targets, int64_t n, int64_t vocab,
                         int64_t ignoreToken) {
  for (int64_t i = 0; i < n; ++i)
    if (targets[i] != ignoreToken && (targets[i] < 0 || targets[i] >= vocab))
      return std::string(kernel) + ": target " + std::to_string(targets[i]) + " at position " +
             std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
  return "";
}

// logits[rows, cols] = h[rows, dim] table[cols, dim]^T.
template <typename T>
void logitsChunk(const T *h, const T *table, int64_t rows, int64_t cols, int64_t dim, T *logits) {
  MatmulShape s;
  s.m = rows;
  s.n = cols;
  s.k = dim;
  s.transB = true;
  matmul<T>(s, T(1), h, table, false, logits);
}
} // namespace

template <typename T>
std::string lmHeadXent(const T *h, const T *table, const int32_t *targets, int64_t n,
                       int64_t dim, int64_t vocab, int64_t ignoreToken, int64_t chunk, T *loss,
                       T *mask, T *lse) {
  if (std::string err = checkTargets<T>("lm_head_xent", targets, n, vocab, ignoreToken);
      !err.empty())
    return err;
  chunk = std::max<int64_t>(1, std::min(chunk, vocab));
  std::vector<T> logits(size_t(kRows * chunk));
  std::vector<double> runMax(kRows), runSum(kRows), picked(kRows);
  for (int64_t r0 = 0; r0 < n; r0 += kRows) {
    const int64_t rows = std::min(kRows, n - r0);
    std::fill(runMax.begin(), runMax.end(), -std::numeric_limits<double>::infinity());
    std::fill(runSum.begin(), runSum.end(), 0.0);
    for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
      const int64_t cols = std::min(chunk, vocab - v0);
      logitsChunk(h + r0 * dim, table + v0 * dim, rows, cols, dim, logits.data());
      for (int64_t i = 0; i < rows; ++i) {
        const int32_t t = targets[r0 + i];
        if (t == ignoreToken)
          continue;
        const T *row = logits.data() + i * cols;
        const double chunkMax = double(*std::max_element(row, row + cols));
        if (chunkMax > runMax[i]) {
          runSum[i] *= std::exp(runMax[i] - chunkMax);
          runMax[i] = chunkMax;
        }
        double sum = 0.0;
        for (int64_t c = 0; c < cols; ++c)
          sum += std::exp(double(row[c]) - runMax[i]);
        runSum[i] += sum;
        if (t >= v0 && t < v0 + cols)
          picked[i] = double(row[t - v0]);
      }
    }
    for (int64_t i = 0; i < rows; ++i) {
      if (targets[r0 + i] == ignoreToken) {
        loss[r0 + i] = mask[r0 + i] = lse[r0 + i] = T(0);
        continue;
      }
      const double l = runMax[i] + std::log(runSum[i]);
      loss[r0 + i] = T(l - picked[i]);
      mask[r0 + i] = T(1);
      lse[r0 + i] = T(l);
    }
  }
  return "";
}

template <typename T>
void lmHeadXentBackward(const T *h, const T *table, const int32_t *targets, const T *lse,
                        const T *dloss, int64_t n, int64_t dim, int64_t vocab,
                        int64_t ignoreToken, int64_t chunk, T *dh, T *dtable) {
  if (std::string err = checkTargets<T>("lm_head_xent_bwd", targets, n, vocab, ignoreToken);
      !err.empty())
    throw std::invalid_argument(err); // the forward reported bad targets as data errors
  chunk = std::max<int64_t>(1, std::min(chunk, vocab));
  std::fill(dh, dh + n * dim, T(0));
  std::fill(dtable, dtable + vocab * dim, T(0));
  std::vector<T> g(size_t(kRows * chunk));
  for (int64_t r0 = 0; r0 < n; r0 += kRows) {
    const int64_t rows = std::min(kRows, n - r0);
    for (int64_t v0 = 0; v0 < vocab; v0 += chunk) {
      const int64_t cols = std::min(chunk, vocab - v0);
      logitsChunk(h + r0 * dim, table + v0 * dim, rows, cols, dim, g.data());
      for (int64_t i = 0; i < rows; ++i) {
        T *row = g.data() + i * cols;
        const int32_t t = targets[r0 + i];
        if (t == ignoreToken) {
          std::fill(row, row + cols, T(0));
          continue;
        }
        const double d = double(dloss[r0 + i]), l = double(lse[r0 + i]);
        for (int64_t c = 0; c < cols; ++c)
          row[c] = T(d * std::exp(double(row[c]) - l));
        if (t >= v0 && t < v0 + cols)
          row[t - v0] = T(double(row[t - v0]) - d);
      }
      // dh[rows] += G table[cols]; dtable[cols] += G^T h[rows].
      MatmulShape a;
      a.m = rows;
      a.n = dim;
      a.k = cols;
      matmul<T>(a, T(1), g.data(), table + v0 * dim, true, dh + r0 * dim);
      MatmulShape b;
      b.m = cols;
      b.n = dim;
      b.k = rows;
      b.transA = true;
      matmul<T>(b, T(1), g.data(), h + r0 * dim, true, dtable + v0 * dim);
    }
  }
}

#define TTT_FUSED(T)                                                                             \
  template void fusedElementwise<T>(const std::vector<FusedStep> &,                              \
                                    const std::vector<const T *> &, const std::vector<Shape> &,  \
                                    const Shape &, T *);                                         \
  template std::string lmHeadXent<T>(const T *, const T *, const int32_t *, int64_t, int64_t,    \
                                     int64_t, int64_t, int64_t, T *, T *, T *);                  \
  template void lmHeadXentBackward<T>(const T *, const T *, const int32_t *, const T *,          \
                                      const T *, int64_t, int64_t, int64_t, int64_t, int64_t,    \
                                      T *, T *);
TTT_FUSED(float)
TTT_FUSED(double)
} // namespace ttt::cpu
