// gather: rows of the embedding table selected by token ids.
#include "runtime/backend/cpu/Kernels.h"

#include <algorithm>

namespace ttt::cpu {
template <typename T>
std::string embedding(const int32_t *tokens, int64_t n, const T *table, int64_t vocab, int64_t dim,
                      T *y) {
  // Check every id before writing anything: a bad id would otherwise read outside the table.
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab)
      return "embedding: token " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
             " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
  }
  for (int64_t i = 0; i < n; ++i) {
    const T *row = table + static_cast<int64_t>(tokens[i]) * dim;
    std::copy(row, row + dim, y + i * dim);
  }
  return "";
}

template std::string embedding<float>(const int32_t *, int64_t, const float *, int64_t, int64_t,
                                      float *);
template std::string embedding<double>(const int32_t *, int64_t, const double *, int64_t, int64_t,
                                       double *);
} // namespace ttt::cpu
