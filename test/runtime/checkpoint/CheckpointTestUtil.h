// Helpers shared by the checkpoint tests: a toy plan with every Hugging Face layout, temp dirs.
#pragma once

#include "ttt/schema/plan_generated.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ttt::test {
// A flatbuffer payload: embed [8, 4] same, q [4, 4] transpose, conv [4, 4] conv, b1 [2, 2]
// unsqueeze1, gate [2, 4] unsqueeze1, norm [4] same. `tied` sets tie_word_embeddings; `withLmHead`
// adds an untied lm_head [4, 8] (transpose) parameter.
std::vector<uint8_t> hfToyPlan(bool tied, bool withLmHead = false);
inline const plan::Plan &planOf(const std::vector<uint8_t> &payload) {
  return *plan::GetPlan(payload.data());
}
// Parameter i's element k is 100 * i + k + 0.25 (exact in bf16 only for small values).
std::vector<std::vector<double>> toyValues(const plan::Plan &plan);

std::string makeCheckpointTempDir();
void removeCheckpointTempDir(const std::string &dir);
} // namespace ttt::test
