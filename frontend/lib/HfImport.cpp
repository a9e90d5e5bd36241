#include "ttt/Frontend/HfImport.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace ttt;

namespace {
// Reads typed fields of the config with TTTConfig's defaults (spec 5.1); records the first error.
struct ConfigReader {
  const llvm::json::Object &obj;
  std::string &error;

  int64_t integer(StringRef key, std::optional<int64_t> dflt) {
    const llvm::json::Value *v = obj.get(key);
    if (!v) {
      if (!dflt && error.empty())
        error = "missing field \"" + key.str() + "\"";
      return dflt.value_or(0);
    }
    if (auto i = v->getAsInteger())
      return *i;
    if (error.empty())
      error = "field \"" + key.str() + "\" must be an integer";
    return 0;
  }
  double number(StringRef key, double dflt) {
    const llvm::json::Value *v = obj.get(key);
    if (!v)
      return dflt;
    if (auto n = v->getAsNumber())
      return *n;
    if (error.empty())
      error = "field \"" + key.str() + "\" must be a number";
    return dflt;
  }
  bool boolean(StringRef key, bool dflt) {
    const llvm::json::Value *v = obj.get(key);
    if (!v)
      return dflt;
    if (auto b = v->getAsBoolean())
      return *b;
    if (error.empty())
      error = "field \"" + key.str() + "\" must be true or false";
    return dflt;
  }
  std::string string(StringRef key, StringRef dflt) {
    const llvm::json::Value *v = obj.get(key);
    if (!v)
      return dflt.str();
    if (auto s = v->getAsString())
      return s->str();
    if (error.empty())
      error = "field \"" + key.str() + "\" must be a string";
    return dflt.str();
  }
};
} // namespace

OwningOpRef<ModuleOp> ttt::importHfConfig(MLIRContext *ctx, StringRef jsonText,
                                          StringRef sourceName, const HfImportOptions &options,
                                          std::string &error) {
  auto fail = [&](const std::string &message) {
    error = sourceName.str() + ": " + message;
    return OwningOpRef<ModuleOp>();
  };
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(jsonText);
  if (!parsed)
    return fail("not valid JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *obj = parsed->getAsObject();
  if (!obj)
    return fail("expected a JSON object (a Hugging Face config.json)");

  std::string fieldError;
  ConfigReader r{*obj, fieldError};
  std::string modelType = r.string("model_type", "");
  if (modelType != "ttt")
    return fail("model_type is \"" + modelType + "\"; only the reference TTT model (\"ttt\") can be imported");
  if (r.string("ttt_layer_type", "linear") != "linear")
    return fail("ttt_layer_type must be \"linear\" (TTT-Linear); TTT-MLP is not supported");
  if (r.string("hidden_act", "silu") != "silu")
    return fail("hidden_act must be \"silu\" (SwiGLU)");
  // TTTConfig defaults (spec 5.1) for fields a config may leave out.
  int64_t vocab = r.integer("vocab_size", 32000);
  int64_t hidden = r.integer("hidden_size", 2048);
  int64_t inter = r.integer("intermediate_size", 5504);
  int64_t layers = r.integer("num_hidden_layers", 24);
  int64_t heads = r.integer("num_attention_heads", 32);
  int64_t convWidth = r.integer("conv_kernel", 4);
  int64_t miniBatch = r.integer("mini_batch_size", 16);
  int64_t maxPos = r.integer("max_position_embeddings", 2048);
  double ropeTheta = r.number("rope_theta", 10000.0);
  double rmsEps = r.number("rms_norm_eps", 1e-6);
  double initRange = r.number("initializer_range", 0.02);
  double baseLr = r.number("ttt_base_lr", 1.0);
  bool tie = r.boolean("tie_word_embeddings", true);
  bool shareQk = r.boolean("share_qk", false);
  bool useGate = r.boolean("use_gate", false);
  bool preConv = r.boolean("pre_conv", false);
  if (r.integer("bos_token_id", 1) != 1 || r.integer("eos_token_id", 2) != 2)
    return fail("bos_token_id/eos_token_id must be 1/2 (the Llama-2 tokenizer)");
  if (!fieldError.empty())
    return fail(fieldError);
  if (!shareQk || !useGate || !preConv)
    return fail("only the Mamba backbone TTT-Linear (M) is supported: the config needs "
                "\"share_qk\": true, \"use_gate\": true, \"pre_conv\": true");
  if (!tie)
    return fail("untied embeddings are not supported: set \"tie_word_embeddings\": true");

  // The recipe: a standard preset (given, or matched by size) plus flags.
  const StandardModel *preset = nullptr;
  if (!options.preset.empty()) {
    preset = findStandardModel(options.preset);
    if (!preset)
      return fail("unknown recipe preset '" + options.preset + "'; use tiny, 125m, 350m, 760m or 1b");
  } else {
    for (const StandardModel &m : standardModels())
      if (m.vocab == vocab && m.hidden == hidden && m.intermediate == inter &&
          m.layers == layers && m.heads == heads)
        preset = &m;
  }
  bool haveSchedule = options.lr && options.totalSteps;
  if (!preset && !haveSchedule)
    return fail("the sizes match no standard recipe; pass --recipe NAME, or --lr and --total-steps");
  RecipeFields recipe;
  if (preset) {
    recipe.lr = preset->lr;
    recipe.totalSteps = preset->totalSteps;
    recipe.warmupSteps = preset->warmupSteps;
    recipe.globalBatch = preset->globalBatch;
    recipe.seqLen = preset->seqLen;
  } else {
    recipe.seqLen = maxPos;
  }
  recipe.miniBatch = miniBatch;
  recipe.innerBaseLr = baseLr;
  if (options.lr)
    recipe.lr = *options.lr;
  if (options.totalSteps) {
    recipe.totalSteps = *options.totalSteps;
    if (!options.warmupSteps)
      recipe.warmupSteps = recipe.totalSteps / 10; // the recipes warm up for 10%
  }
  recipe.lrEnd = options.lrEnd.value_or(recipe.lrEnd);
  recipe.warmupSteps = options.warmupSteps.value_or(recipe.warmupSteps);
  recipe.globalBatch = options.globalBatch.value_or(recipe.globalBatch);
  recipe.seqLen = options.seqLen.value_or(recipe.seqLen);
  recipe.rematGroup = options.rematGroup.value_or(recipe.rematGroup);
  recipe.seed = options.seed.value_or(recipe.seed);
  recipe.statePassing = options.statePassing.value_or(recipe.statePassing);

  // Build both attributes through their verifiers so a bad value gets the dialect's message.
  std::string verifyError;
  auto emitError = [&]() {
    return mlir::emitError(UnknownLoc::get(ctx));
  };
  ScopedDiagnosticHandler capture(ctx, [&](Diagnostic &diag) {
    if (verifyError.empty())
      verifyError = diag.str();
    return success();
  });
  ConfigAttr config = ConfigAttr::getChecked(emitError, ctx, vocab, hidden, inter, layers, heads,
                                             convWidth, F64(ropeTheta), F64(rmsEps), F64(initRange), tie,
                                             shareQk, useGate, preConv);
  if (!config)
    return fail(verifyError);
  RecipeAttr recipeAttr = RecipeAttr::getChecked(
      emitError, ctx, llvm::StringRef(recipe.optimizer), F64(recipe.beta1), F64(recipe.beta2), F64(recipe.eps),
      F64(recipe.weightDecay), F64(recipe.gradClip), F64(recipe.lr), F64(recipe.lrEnd),
      recipe.warmupSteps, recipe.totalSteps, recipe.globalBatch, recipe.seqLen,
      recipe.miniBatch, F64(recipe.innerBaseLr),
      recipe.rematGroup, recipe.statePassing, recipe.seed, recipe.checkpointEvery,
      recipe.milestoneEvery);
  if (!recipeAttr)
    return fail(verifyError);

  std::string name = options.modelName;
  if (name.empty())
    name = preset ? "ttt_" + preset->name : "ttt_model";
  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(ctx));
  ModelOp model = buildModel(*module, name, config, recipeAttr);
  if (failed(mlir::verify(model)))
    return fail(verifyError.empty() ? "the imported model does not verify" : verifyError);
  return module;
}
