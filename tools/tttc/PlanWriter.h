// Serializes a verified ttt.model and the compile flags into the plan payload (plan.fbs).
#pragma once

#include "Driver.h"
#include "ttt/Dialect/Prim/PrimOps.h"
#include "ttt/Dialect/TTT/TTTOps.h"
#include "ttt/schema/plan_generated.h"

#include <cstdint>
#include <vector>

namespace ttt::driver {
/// The shapes and target a plan is compiled for, after defaults and checks.
struct CompiledShape {
  int64_t perDeviceBatch, seqLen;
  std::string precision, target;
};

/// One tttp.program as a plan Program table (tensor table + instructions).
flatbuffers::Offset<plan::Program> serializeProgram(flatbuffers::FlatBufferBuilder &fbb,
                                                    prim::ProgramOp program);

/// `programs` are the tttp.program ops to serialize (eval_step, ...), may be empty.
std::vector<uint8_t> buildPlanPayload(ModelOp model, const CompiledShape &shape,
                                      llvm::ArrayRef<prim::ProgramOp> programs);
} // namespace ttt::driver
