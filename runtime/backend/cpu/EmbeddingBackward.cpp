// gather backward: the embedding table's gradient is a scatter-add of the output rows.
#include "runtime/backend/cpu/Backward.h"

#include <algorithm>
#include <vector>

namespace ttt::cpu {
template <typename T>
std::string embeddingBackward(const int32_t *tokens, int64_t n, const T *dy, int64_t vocab,
                              int64_t dim, T *dtable) {
  // Check every id before writing anything: a bad id would otherwise write outside the table.
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab)
      return "embedding_backward: token " + std::to_string(tokens[i]) + " at position " +
             std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
  }
  // Accumulate in double, rows in increasing n, so a token repeated many times loses no bits in
  // float and the result does not depend on anything but the input order.
  std::vector<double> acc(vocab * dim, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double *row = acc.data() + static_cast<int64_t>(tokens[i]) * dim;
    const T *g = dy + i * dim;
    for (int64_t c = 0; c < dim; ++c)
      row[c] += double(g[c]);
  }
  std::transform(acc.begin(), acc.end(), dtable, [](double v) { return T(v); });
  return "";
}

template std::string embeddingBackward<float>(const int32_t *, int64_t, const float *, int64_t,
                                              int64_t, float *);
template std::string embeddingBackward<double>(const int32_t *, int64_t, const double *, int64_t,
                                               int64_t, double *);
} // namespace ttt::cpu
