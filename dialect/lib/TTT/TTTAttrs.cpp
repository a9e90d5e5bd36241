#include "ttt/Dialect/TTT/TTTOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace mlir;
using namespace ttt;

FailureOr<F64> ttt::detail::parseF64(AsmParser &parser) {
  double value = 0;
  if (parser.parseFloat(value))
    return failure();
  return F64(value);
}

// Shortest decimal that reads back to the same double, always with a '.' so MLIR lexes it as a
// float ("0.02", "1.0e-08", "10000.0").
void ttt::detail::printF64(AsmPrinter &printer, double value) {
  printer << formatF64(value);
}

std::string ttt::detail::formatF64(double value) {
  char buf[40];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.1f", value); // 10000.0, not 1.0e+04
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value)
      break;
  }
  std::string s = buf;
  if (s.find_first_of(".ni") == std::string::npos) { // not nan/inf, no dot yet
    size_t e = s.find('e');
    s.insert(e == std::string::npos ? s.size() : e, ".0");
  }
  return s;
}

FailureOr<bool> ttt::detail::parseBool(AsmParser &parser) {
  if (succeeded(parser.parseOptionalKeyword("true")))
    return true;
  if (succeeded(parser.parseOptionalKeyword("false")))
    return false;
  return parser.emitError(parser.getCurrentLocation(), "expected 'true' or 'false'");
}

#include "ttt/Dialect/TTT/TTTEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "ttt/Dialect/TTT/TTTAttrs.cpp.inc"

void TTTDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "ttt/Dialect/TTT/TTTAttrs.cpp.inc"
      >();
}

LogicalResult ConfigAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t vocab,
                                 int64_t hidden, int64_t intermediate, int64_t layers,
                                 int64_t heads, int64_t convWidth, F64 ropeTheta, F64 rmsEps,
                                 F64 initRange, bool tieEmbeddings, bool shareQk, bool useGate,
                                 bool preConv) {
  auto positive = [&](int64_t v, StringRef what) -> LogicalResult {
    if (v > 0)
      return success();
    return emitError() << "config: " << what << " must be positive, got " << v;
  };
  if (failed(positive(vocab, "vocab")) || failed(positive(hidden, "hidden")) ||
      failed(positive(intermediate, "intermediate")) || failed(positive(layers, "layers")) ||
      failed(positive(heads, "heads")) || failed(positive(convWidth, "conv_width")))
    return failure();
  if (hidden % heads != 0)
    return emitError() << "config: hidden size " << hidden << " is not divisible by heads "
                       << heads << "; choose heads that divide hidden (head_dim = hidden / heads)";
  if (!(ropeTheta > 0) || !(rmsEps > 0) || !(initRange > 0))
    return emitError() << "config: rope_theta, rms_eps and init_range must be positive";
  if (!tieEmbeddings || !shareQk || !useGate || !preConv)
    return emitError() << "config: only the TTT-Linear Mamba backbone is supported: set "
                          "tie_embeddings, share_qk, use_gate and pre_conv to true";
  return success();
}

LogicalResult RecipeAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 StringRef optimizer, F64 beta1, F64 beta2, F64 eps,
                                 F64 weightDecay, F64 gradClip, F64 lr, F64 lrEnd,
                                 int64_t warmupSteps, int64_t totalSteps, int64_t globalBatch,
                                 int64_t seqLen, int64_t miniBatch, F64 innerBaseLr,
                                 int64_t rematGroup, bool statePassing, int64_t seed,
                                 int64_t checkpointEvery, int64_t milestoneEvery) {
  if (optimizer != "adamw")
    return emitError() << "recipe: optimizer \"" << optimizer
                       << "\" is not supported; use \"adamw\"";
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
    return emitError() << "recipe: beta1 and beta2 must be in [0, 1), got " << detail::formatF64(beta1) << " and "
                       << detail::formatF64(beta2);
  if (!(eps > 0))
    return emitError() << "recipe: eps must be positive, got " << detail::formatF64(eps);
  if (!(weightDecay >= 0))
    return emitError() << "recipe: weight_decay must be >= 0, got " << detail::formatF64(weightDecay);
  if (!(gradClip > 0))
    return emitError() << "recipe: grad_clip must be positive, got " << detail::formatF64(gradClip);
  if (!(lr > 0))
    return emitError() << "recipe: lr must be positive, got " << detail::formatF64(lr);
  if (!(lrEnd >= 0 && lrEnd <= lr))
    return emitError() << "recipe: lr_end must be in [0, lr], got " << detail::formatF64(lrEnd) << " with lr "
                       << detail::formatF64(lr);
  if (totalSteps <= 0)
    return emitError() << "recipe: total_steps must be positive, got " << totalSteps;
  if (warmupSteps < 0 || warmupSteps > totalSteps)
    return emitError() << "recipe: warmup_steps " << warmupSteps
                       << " must be between 0 and total_steps " << totalSteps;
  if (globalBatch <= 0 || seqLen <= 0 || miniBatch <= 0 || rematGroup <= 0)
    return emitError() << "recipe: global_batch, seq_len, mini_batch and remat_group must be "
                          "positive";
  if (seqLen % miniBatch != 0)
    return emitError() << "recipe: seq_len " << seqLen << " is not a multiple of mini_batch "
                       << miniBatch << "; change seq_len or mini_batch";
  int64_t miniBatches = seqLen / miniBatch;
  if (miniBatches % rematGroup != 0)
    return emitError() << "recipe: remat_group " << rematGroup << " does not divide the "
                       << miniBatches << " mini-batches of a sequence (seq_len " << seqLen
                       << " / mini_batch " << miniBatch << "); pick a divisor of " << miniBatches;
  if (!(innerBaseLr > 0))
    return emitError() << "recipe: inner_base_lr must be positive, got " << detail::formatF64(innerBaseLr);
  if (seed < 0)
    return emitError() << "recipe: seed must be >= 0, got " << seed;
  if (checkpointEvery <= 0 || milestoneEvery <= 0)
    return emitError() << "recipe: checkpoint_every and milestone_every must be positive";
  return success();
}
