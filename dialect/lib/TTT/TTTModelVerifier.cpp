// The model-level verifier (everything must agree with the config and recipe) and the parameter
// enumeration it shares with the tools.
#include "ttt/Dialect/TTT/TTTModel.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"

using namespace mlir;
using namespace ttt;

std::string ttt::paramKind(ParamOp param) {
  for (Operation *user : param->getUsers())
    if (!isa<LmHeadOp>(user))
      return user->getName().stripDialect().str();
  return param->use_empty() ? "unused" : "embedding";
}

std::vector<ParamInstance> ttt::enumerateParams(ModelOp model) {
  std::vector<ParamInstance> params;
  for (Operation &op : model.getBody().front()) {
    if (auto param = dyn_cast<ParamOp>(op)) {
      params.push_back({param, param.getName().str(), param.getHfName().str(), -1,
                        paramKind(param)});
    } else if (auto repeat = dyn_cast<RepeatOp>(op)) {
      SmallVector<ParamOp> body(repeat.getBody().front().getOps<ParamOp>());
      for (int64_t layer = 0; layer < int64_t(repeat.getCount()); ++layer)
        for (ParamOp param : body) {
          std::string hf = param.getHfName().str();
          size_t at = hf.find(ParamOp::kLayerPlaceholder.str());
          if (at != std::string::npos)
            hf.replace(at, ParamOp::kLayerPlaceholder.size(), std::to_string(layer));
          params.push_back({param, "layers." + std::to_string(layer) + "." + param.getName().str(),
                            hf, layer, paramKind(param)});
        }
    }
  }
  return params;
}

namespace {
bool sameDouble(APFloat a, double b) { return a.convertToDouble() == b; }
std::string str(APFloat a) { return ttt::detail::formatF64(a.convertToDouble()); }
std::string str(double d) { return ttt::detail::formatF64(d); }

int64_t hiddenOf(Value v) { return cast<RankedTensorType>(v.getType()).getDimSize(2); }
} // namespace

LogicalResult ModelOp::verifyRegions() {
  ConfigAttr config = getConfig();
  RecipeAttr recipe = getRecipe();
  Block &body = getBody().front();
  for (BlockArgument arg : body.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!type || type.getRank() != 2 || !type.getElementType().isInteger(32))
      return emitOpError() << "body takes (tokens, targets) as tensor<?x?xi32>, got "
                           << arg.getType();
  }
  if (body.getNumArguments() != 2)
    return emitOpError() << "body takes exactly two arguments (tokens, targets), got "
                         << body.getNumArguments();
  if (!isa<ReturnOp>(body.getTerminator()))
    return emitOpError() << "body must end with ttt.return of the loss";

  const int64_t d = config.getHidden();
  auto wrongHidden = [&](Operation *op, int64_t got) {
    return op->emitOpError() << "works on hidden size " << got << " but the config says hidden = "
                             << d;
  };
  int64_t tttLayers = 0;
  Value embeddingTable;
  WalkResult walk = getBody().walk([&](Operation *op) -> WalkResult {
    int64_t copies = 1;
    if (auto repeat = op->getParentOfType<RepeatOp>())
      copies = repeat.getCount();
    if (auto repeat = dyn_cast<RepeatOp>(op)) {
      if (int64_t(repeat.getCount()) != config.getLayers())
        return repeat.emitOpError() << "repeats " << repeat.getCount()
                                    << " times but the config has layers = " << config.getLayers();
    } else if (auto emb = dyn_cast<EmbeddingOp>(op)) {
      auto table = emb.getTable().getType();
      if (table.getDimSize(0) != config.getVocab() || table.getDimSize(1) != d)
        return emb.emitOpError() << "table must be [vocab, hidden] = [" << config.getVocab()
                                 << ", " << d << "] per the config";
      embeddingTable = emb.getTable();
    } else if (auto head = dyn_cast<LmHeadOp>(op)) {
      if (hiddenOf(head.getInput()) != d)
        return wrongHidden(op, hiddenOf(head.getInput()));
      if (config.getTieEmbeddings() && head.getTable() != embeddingTable)
        return head.emitOpError() << "must use the embedding's table: the config ties "
                                     "embeddings (tie_embeddings = true)";
    } else if (auto norm = dyn_cast<RmsNormOp>(op)) {
      if (hiddenOf(norm.getInput()) != d)
        return wrongHidden(op, hiddenOf(norm.getInput()));
      if (!sameDouble(norm.getEps(), config.getRmsEps()))
        return norm.emitOpError() << "eps " << str(norm.getEps())
                                  << " differs from the config's rms_eps " << str(config.getRmsEps());
    } else if (auto conv = dyn_cast<CausalConvOp>(op)) {
      if (hiddenOf(conv.getInput()) != d)
        return wrongHidden(op, hiddenOf(conv.getInput()));
      if (conv.getKernel().getType().getDimSize(0) != config.getConvWidth())
        return conv.emitOpError() << "kernel width " << conv.getKernel().getType().getDimSize(0)
                                  << " differs from the config's conv_width "
                                  << config.getConvWidth();
    } else if (auto ttt = dyn_cast<TTTLinearOp>(op)) {
      tttLayers += copies;
      if (hiddenOf(ttt.getInput()) != d)
        return wrongHidden(op, hiddenOf(ttt.getInput()));
      if (int64_t(ttt.getHeads()) != config.getHeads())
        return ttt.emitOpError() << "heads = " << ttt.getHeads()
                                 << " differs from the config's heads = " << config.getHeads();
      if (int64_t(ttt.getMiniBatch()) != recipe.getMiniBatch())
        return ttt.emitOpError() << "mini_batch = " << ttt.getMiniBatch()
                                 << " differs from the recipe's mini_batch = "
                                 << recipe.getMiniBatch();
      if (int64_t(ttt.getConvWidth()) != config.getConvWidth())
        return ttt.emitOpError() << "conv_width = " << ttt.getConvWidth()
                                 << " differs from the config's conv_width = "
                                 << config.getConvWidth();
      if (!sameDouble(ttt.getBaseLr(), recipe.getInnerBaseLr()))
        return ttt.emitOpError() << "base_lr = " << str(ttt.getBaseLr())
                                 << " differs from the recipe's inner_base_lr = "
                                 << str(recipe.getInnerBaseLr());
      if (!sameDouble(ttt.getRopeTheta(), config.getRopeTheta()))
        return ttt.emitOpError() << "rope_theta = " << str(ttt.getRopeTheta())
                                 << " differs from the config's rope_theta = "
                                 << str(config.getRopeTheta());
    } else if (auto mlp = dyn_cast<SwiGLUMlpOp>(op)) {
      if (hiddenOf(mlp.getInput()) != d)
        return wrongHidden(op, hiddenOf(mlp.getInput()));
      int64_t inter = mlp.getWGate().getType().getDimSize(1);
      if (inter != config.getIntermediate())
        return mlp.emitOpError() << "intermediate size " << inter
                                 << " differs from the config's intermediate = "
                                 << config.getIntermediate();
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  if (tttLayers != config.getLayers())
    return emitOpError() << "has " << tttLayers << " ttt_linear layers but the config has layers = "
                         << config.getLayers();

  for (ParamOp param : getBody().getOps<ParamOp>())
    if (param->use_empty())
      return param.emitOpError() << "'" << param.getName() << "' is never used; remove it";
  for (RepeatOp repeat : getBody().getOps<RepeatOp>())
    for (ParamOp param : repeat.getBody().getOps<ParamOp>())
      if (param->use_empty())
        return param.emitOpError() << "'" << param.getName() << "' is never used; remove it";

  llvm::StringMap<ParamOp> names, hfNames;
  for (ParamInstance &p : enumerateParams(*this)) {
    if (!names.try_emplace(p.name, p.op).second)
      return p.op.emitOpError() << "parameter name '" << p.name << "' is declared twice";
    if (!hfNames.try_emplace(p.hfName, p.op).second)
      return p.op.emitOpError() << "Hugging Face name '" << p.hfName << "' is used twice";
  }
  return success();
}
