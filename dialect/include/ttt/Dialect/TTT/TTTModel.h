// Queries over a ttt.model: its parameters with repeats expanded, and their counts.
#pragma once

#include "ttt/Dialect/TTT/TTTOps.h"

#include <string>
#include <vector>

namespace ttt {
/// One parameter instance: a ttt.param outside a repeat, or one layer's copy of one inside.
struct ParamInstance {
  ParamOp op;
  std::string name;   // "embed", "layers.3.ttt.W1"
  std::string hfName; // "{i}" replaced by the layer index
  int64_t layer = -1; // -1 outside the repeat
  std::string kind;   // layer op that consumes it: embedding, rms_norm, causal_conv, ...
  int64_t numElements() { return op.getNumElements(); }
};

/// Parameters in program order, each repeat expanded layer by layer.
std::vector<ParamInstance> enumerateParams(ModelOp model);

/// The consumer kind of a parameter ("embedding", "ttt_linear", ...), "unused" if none.
std::string paramKind(ParamOp param);
} // namespace ttt
