#include "ttt/Frontend/ModelBuilder.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <cmath>

using namespace mlir;
using namespace ttt;

llvm::ArrayRef<StandardModel> ttt::standardModels() {
  // Sizes: spec 1.1. Recipes: spec 4.2 (warmup 10%, global batch 256 x 2048). "tiny" is ours:
  // vocab 32000 so it trains on real tokens, small enough for CPU tests in seconds.
  static const StandardModel models[] = {
      {"tiny", 32000, 64, 128, 2, 4, 200, 20, 8, 128, 3e-3},
      {"125m", 32000, 768, 2048, 12, 12, 4800, 480, 256, 2048, 3e-3},
      {"350m", 32000, 1024, 2736, 24, 16, 13500, 1350, 256, 2048, 1.5e-3},
      {"760m", 32000, 1536, 4096, 24, 16, 29000, 2900, 256, 2048, 1.25e-3},
      {"1b", 32000, 2048, 5504, 24, 32, 50000, 5000, 256, 2048, 1e-3},
  };
  return models;
}

const StandardModel *ttt::findStandardModel(llvm::StringRef name) {
  for (const StandardModel &m : standardModels())
    if (m.name == name)
      return &m;
  return nullptr;
}

RecipeAttr RecipeFields::toAttr(MLIRContext *ctx) const {
  return RecipeAttr::get(ctx, llvm::StringRef(optimizer), F64(beta1), F64(beta2), F64(eps), F64(weightDecay),
                         F64(gradClip), F64(lr), F64(lrEnd), warmupSteps, totalSteps,
                         globalBatch, seqLen, miniBatch, F64(innerBaseLr),
                         rematGroup, statePassing, seed, checkpointEvery, milestoneEvery);
}

namespace {
struct ModelWriter {
  OpBuilder b;
  Location loc;
  ConfigAttr config;
  RecipeAttr recipe;
  Type f32;

  Value param(StringRef name, ArrayRef<int64_t> shape, InitKind init, std::optional<double> std,
              StringRef hf, HfLayout layout = HfLayout::same) {
    auto type = RankedTensorType::get(shape, f32);
    FloatAttr stdAttr = std ? b.getF64FloatAttr(*std) : FloatAttr();
    HfLayoutAttr layoutAttr =
        layout == HfLayout::same ? HfLayoutAttr() : HfLayoutAttr::get(b.getContext(), layout);
    return b.create<ParamOp>(loc, type, name, init, stdAttr, /*no_decay=*/false, hf, layoutAttr);
  }
  Value ones(StringRef name, ArrayRef<int64_t> shape, StringRef hf) {
    return param(name, shape, InitKind::ones, std::nullopt, hf);
  }
  Value zeros(StringRef name, ArrayRef<int64_t> shape, StringRef hf,
              HfLayout layout = HfLayout::same) {
    return param(name, shape, InitKind::zeros, std::nullopt, hf, layout);
  }
  Value normal(StringRef name, ArrayRef<int64_t> shape, StringRef hf,
               HfLayout layout = HfLayout::same) {
    return param(name, shape, InitKind::normal, config.getInitRange(), hf, layout);
  }
  // flax LeCun normal for depthwise convs: fan_in = width.
  Value convKernel(StringRef name, StringRef hf) {
    int64_t w = config.getConvWidth();
    return param(name, {w, config.getHidden()}, InitKind::truncated_normal, 1.0 / std::sqrt(w),
                 hf, HfLayout::conv);
  }
  Value rmsNorm(Value x, Value w) {
    return b.create<RmsNormOp>(loc, x.getType(), x, w, b.getF64FloatAttr(config.getRmsEps()));
  }
  Value add(Value x, Value y) { return b.create<AddOp>(loc, x.getType(), x, y); }

  // One residual block (spec 3.1), inside the repeat body.
  Value layer(Value h) {
    const int64_t d = config.getHidden(), heads = config.getHeads(), f = config.getHeadDim();
    const std::string block = "model.layers.{i}.";
    const std::string ttt = block + "seq_modeling_block.";

    Value convNorm = ones("conv.norm", {d}, block + "conv.norm.weight");
    Value convKernel_ = convKernel("conv.kernel", block + "conv.conv.weight");
    Value convBias = zeros("conv.bias", {d}, block + "conv.conv.bias");
    Value h1 = add(h, b.create<CausalConvOp>(loc, h.getType(), rmsNorm(h, convNorm), convKernel_, convBias));

    Value seqNorm = ones("seq_norm", {d}, block + "seq_norm.weight");
    Value u = rmsNorm(h1, seqNorm);
    SmallVector<Value> p;
    p.push_back(normal("ttt.wq", {d, d}, ttt + "q_proj.weight", HfLayout::transpose));
    p.push_back(normal("ttt.wv", {d, d}, ttt + "v_proj.weight", HfLayout::transpose));
    p.push_back(normal("ttt.wg", {d, d}, ttt + "g_proj.weight", HfLayout::transpose));
    p.push_back(normal("ttt.wo", {d, d}, ttt + "o_proj.weight", HfLayout::transpose));
    p.push_back(convKernel("ttt.conv_q.kernel", ttt + "conv_q.weight"));
    p.push_back(zeros("ttt.conv_q.bias", {d}, ttt + "conv_q.bias"));
    p.push_back(convKernel("ttt.conv_k.kernel", ttt + "conv_k.weight"));
    p.push_back(zeros("ttt.conv_k.bias", {d}, ttt + "conv_k.bias"));
    p.push_back(normal("ttt.lr_gate.weight", {heads, d}, ttt + "learnable_ttt_lr_weight",
                       HfLayout::unsqueeze1));
    p.push_back(zeros("ttt.lr_gate.bias", {heads}, ttt + "learnable_ttt_lr_bias",
                      HfLayout::unsqueeze1));
    p.push_back(zeros("ttt.token_idx", {recipe.getMiniBatch()}, ttt + "learnable_token_idx"));
    p.push_back(ones("ttt.ttt_norm.scale", {heads, f}, ttt + "ttt_norm_weight"));
    p.push_back(zeros("ttt.ttt_norm.bias", {heads, f}, ttt + "ttt_norm_bias"));
    p.push_back(normal("ttt.W1", {heads, f, f}, ttt + "W1"));
    p.push_back(zeros("ttt.b1", {heads, f}, ttt + "b1", HfLayout::unsqueeze1));
    p.push_back(ones("ttt.post_norm.scale", {d}, ttt + "post_norm.weight"));
    p.push_back(zeros("ttt.post_norm.bias", {d}, ttt + "post_norm.bias"));
    Value t = b.create<TTTLinearOp>(
        loc, u.getType(), u, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10],
        p[11], p[12], p[13], p[14], p[15], p[16], b.getI64IntegerAttr(heads),
        b.getI64IntegerAttr(recipe.getMiniBatch()), b.getI64IntegerAttr(config.getConvWidth()),
        b.getF64FloatAttr(recipe.getInnerBaseLr()), b.getF64FloatAttr(config.getRopeTheta()),
        b.getF64FloatAttr(1e-6));
    Value h2 = add(h1, t);

    Value ffnNorm = ones("ffn_norm", {d}, block + "ffn_norm.weight");
    int64_t inter = config.getIntermediate();
    Value n = rmsNorm(h2, ffnNorm);
    Value gate = normal("mlp.gate", {d, inter}, block + "mlp.gate_proj.weight", HfLayout::transpose);
    Value up = normal("mlp.up", {d, inter}, block + "mlp.up_proj.weight", HfLayout::transpose);
    Value down = normal("mlp.down", {inter, d}, block + "mlp.down_proj.weight", HfLayout::transpose);
    return add(h2, b.create<SwiGLUMlpOp>(loc, n.getType(), n, gate, up, down));
  }
};
} // namespace

ModelOp ttt::buildModel(ModuleOp module, StringRef name, ConfigAttr config, RecipeAttr recipe) {
  MLIRContext *ctx = module.getContext();
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  Location loc = b.getUnknownLoc();
  auto model = b.create<ModelOp>(loc, name, config, recipe);
  Type f32 = b.getF32Type();
  auto tokensType = RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic},
                                          IntegerType::get(ctx, 32));
  Block *body = b.createBlock(&model.getBody(), {}, {tokensType, tokensType}, {loc, loc});
  ModelWriter m{OpBuilder::atBlockEnd(body), loc, config, recipe, f32};
  const int64_t d = config.getHidden(), vocab = config.getVocab();
  auto act = [&](int64_t features) {
    return RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic, features}, f32);
  };

  Value embed = m.normal("embed", {vocab, d}, "model.embed_tokens.weight");
  Value h0 = m.b.create<EmbeddingOp>(loc, act(d), body->getArgument(0), embed);
  auto repeat = m.b.create<RepeatOp>(loc, act(d), m.b.getI64IntegerAttr(config.getLayers()), h0);
  Block *layerBody = m.b.createBlock(&repeat.getBody(), {}, {act(d)}, {loc});
  {
    OpBuilder::InsertionGuard guard(m.b);
    m.b.setInsertionPointToEnd(layerBody);
    Value out = m.layer(layerBody->getArgument(0));
    m.b.create<YieldOp>(loc, out);
  }
  m.b.setInsertionPointAfter(repeat);
  Value finalNorm = m.ones("final_norm", {d}, "model.norm.weight");
  Value hn = m.rmsNorm(repeat.getResult(), finalNorm);
  Value logits = m.b.create<LmHeadOp>(loc, act(vocab), hn, embed);
  Value loss = m.b.create<CrossEntropyOp>(loc, RankedTensorType::get({}, f32), logits,
                                          body->getArgument(1), m.b.getI64IntegerAttr(1));
  m.b.create<ReturnOp>(loc, loss);
  return model;
}
