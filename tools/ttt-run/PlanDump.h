// Renders a loaded plan for people (`ttt-run PLAN --dump`, the default summary) and for programs
// (`--dump --json`). Kept apart from main.cpp so the formatting is unit-tested.
#pragma once

#include "runtime/plan/PlanFile.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ttt::run {
// Parameter values owned by one layer-op kind (embedding, ttt_linear, ...), in the order the kinds
// first appear in the parameter table.
struct KindCount {
  std::string kind;
  uint64_t tensors = 0;
  uint64_t values = 0;
};
struct ParameterCounts {
  std::vector<KindCount> byKind;
  uint64_t tensors = 0;
  uint64_t values = 0;
};
ParameterCounts countParameters(const ttt::plan::Plan &plan);

// 1536 -> "1.5 KiB", 512 -> "512 B"; binary units, three significant digits.
std::string humanBytes(uint64_t bytes);
// 110424144 -> "110,424,144".
std::string groupDigits(uint64_t value);
// The shortest text that reads back as the same double: 0.0003 -> "0.0003", 1e-06 -> "1e-06".
std::string formatDouble(double value);

// The whole plan as text: header, provenance, config, recipe, compiled shapes, parameter table
// and the per-kind parameter counts. `name` is how the plan file is called in the output. With
// ranks > 1 the memory section also shows one device of that many ranks with ZeRO-1.
std::string formatPlanText(const ttt::plan::PlanFile &file, const std::string &name, int ranks = 1);
// A few lines: what model, compiled for what, how many parameters.
std::string formatPlanSummary(const ttt::plan::PlanFile &file, const std::string &name);
// The same content as formatPlanText as one JSON document; keys keep a fixed order. Tables absent
// from the plan are null.
nlohmann::ordered_json planToJson(const ttt::plan::PlanFile &file, const std::string &name,
                                  int ranks = 1);
} // namespace ttt::run
