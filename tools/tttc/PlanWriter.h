// Serializes a verified ttt.model and the compile flags into the plan payload (plan.fbs).
#pragma once

#include "Driver.h"
#include "ttt/Dialect/TTT/TTTOps.h"

#include <cstdint>
#include <vector>

namespace ttt::driver {
/// The shapes and target a plan is compiled for, after defaults and checks.
struct CompiledShape {
  int64_t perDeviceBatch, seqLen;
  std::string precision, target;
};

std::vector<uint8_t> buildPlanPayload(ModelOp model, const CompiledShape &shape);
} // namespace ttt::driver
