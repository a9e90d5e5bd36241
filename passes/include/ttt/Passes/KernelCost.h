// Kernels and bytes moved per step of a tttp program: the numbers `ttt-run --dump` shows
// before and after fusion (ttt-record-cost, tools/tttc/PlanWriter.cpp).
#pragma once

#include "ttt/Dialect/Prim/PrimOps.h"

#include <cstdint>

namespace ttt {
struct KernelCost {
  int64_t kernels = 0; // instructions that run a kernel, a scan body's once per iteration
  int64_t bytes = 0;   // their operand + result bytes, a scan body's times its trip count
};

// Counts every op but param, input, output, yield, bucket_ready, the scan itself and a reshape
// that the memory plan made a view (its result's buffer is its operand's: no copy runs).
KernelCost kernelCost(prim::ProgramOp program);
} // namespace ttt
