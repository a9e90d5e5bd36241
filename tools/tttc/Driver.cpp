#include "Driver.h"

#include "PlanWriter.h"
#include "runtime/plan/PlanFile.h"
#include "ttt/Dialect/TTT/TTTModel.h"
#include "ttt/Frontend/HfImport.h"
#include "ttt/Passes/Passes.h"
#include "ttt/Version.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace mlir;

namespace ttt::driver {
namespace {
int fail(const llvm::Twine &message) {
  llvm::errs() << "tttc: error: " << message << "\n";
  return 1;
}

std::string withCommas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return out;
}

// Which issue brings each phase that is not implemented yet.
const std::map<std::string, std::string> &pendingPhases() {
  static const std::map<std::string, std::string> pending = {
      {"runtime", "the runtime-call lowering (issue 6)"}};
  return pending;
}

void printSummary(ModelOp model, llvm::raw_ostream &os) {
  ConfigAttr c = model.getConfig();
  RecipeAttr r = model.getRecipe();
  os << "model " << model.getSymName() << ": " << c.getLayers() << " layers, hidden "
     << c.getHidden() << ", heads " << c.getHeads() << " (head dim " << c.getHeadDim()
     << "), intermediate " << c.getIntermediate() << ", vocab " << c.getVocab() << "\n";
  os << "recipe: adamw lr " << detail::formatF64(r.getLr()) << " -> "
     << detail::formatF64(r.getLrEnd()) << ", warmup "
     << r.getWarmupSteps() << " of " << r.getTotalSteps() << " steps, global batch "
     << r.getGlobalBatch() << " x " << r.getSeqLen() << " tokens, mini-batch "
     << r.getMiniBatch() << ", remat group " << r.getRematGroup() << "\n";
  std::vector<ParamInstance> params = enumerateParams(model);
  std::map<std::string, std::pair<int64_t, int64_t>> byKind; // kind -> (tensors, scalars)
  int64_t total = 0;
  for (ParamInstance &p : params) {
    auto &entry = byKind[p.kind];
    entry.first += 1;
    entry.second += p.numElements();
    total += p.numElements();
  }
  os << "parameters by kind:\n";
  for (auto &[kind, entry] : byKind) {
    std::string label = kind == "embedding" && c.getTieEmbeddings() ? "embedding (tied lm_head)" : kind;
    os << llvm::format("  %-26s %15s  %5.2f%%  (%lld tensors)\n", label.c_str(),
                       withCommas(entry.second).c_str(), 100.0 * entry.second / total,
                       (long long)entry.first);
  }
  os << "total parameters: " << withCommas(total) << " in " << params.size() << " tensors\n";
}

// Applies defaults and checks the shape/target flags against the model. "" when fine.
std::string resolveShape(const CompileOptions &o, RecipeAttr r, CompiledShape &shape) {
  if (o.target != "cpu" && o.target != "sm_90")
    return "--target must be cpu or sm_90, got '" + o.target + "'";
  // The CPU backend is the fp32/fp64 reference; bf16 mixed precision is the GPU's.
  std::string precision = o.precision.empty() ? (o.target == "cpu" ? "fp32" : "bf16") : o.precision;
  if (precision != "bf16" && precision != "fp32" && precision != "fp64")
    return "--precision must be bf16, fp32 or fp64, got '" + precision + "'";
  if (precision == "fp64" && o.target != "cpu")
    return "--precision fp64 runs only on the CPU backend; add --target cpu or use fp32";
  if (precision == "bf16" && o.target == "cpu")
    return "the CPU backend computes in fp32 or fp64; use --precision fp32 (the default for "
           "--target cpu) or --target sm_90";
  shape.precision = precision;
  shape.target = o.target;
  int64_t global = r.getGlobalBatch();
  shape.perDeviceBatch = o.perDeviceBatch ? o.perDeviceBatch : std::min<int64_t>(16, global);
  if (shape.perDeviceBatch <= 0)
    return "--per-device-batch must be positive";
  if (global % shape.perDeviceBatch != 0)
    return "--per-device-batch " + std::to_string(shape.perDeviceBatch) +
           " does not divide the recipe's global batch " + std::to_string(global) +
           "; pick a divisor of it";
  shape.seqLen = o.seqLen ? o.seqLen : r.getSeqLen();
  int64_t groupTokens = r.getMiniBatch() * r.getRematGroup();
  if (shape.seqLen <= 0 || shape.seqLen % groupTokens != 0)
    return "--seq-len " + std::to_string(shape.seqLen) + " must be a positive multiple of " +
           std::to_string(groupTokens) + " (mini_batch " + std::to_string(r.getMiniBatch()) +
           " x remat_group " + std::to_string(r.getRematGroup()) + ")";
  return "";
}

std::unique_ptr<llvm::ToolOutputFile> openOutput(const std::string &path) {
  std::string error;
  auto file = mlir::openOutputFile(path, &error);
  if (!file)
    fail(error);
  return file;
}

// Prints the module as text to PATH ("-": stdout); 1 on an output error.
int printModule(ModuleOp module, const std::string &path) {
  auto out = openOutput(path);
  if (!out)
    return 1;
  module->print(out->os());
  out->os() << "\n";
  out->keep();
  return 0;
}
} // namespace

const std::vector<std::string> &phaseNames() {
  static const std::vector<std::string> names = {"model",   "primitive", "programs", "fused",
                                                 "runtime", "planned",   "plan"};
  return names;
}

std::string versionString() {
  return std::string("tttc ") + TTT_VERSION_STRING + " (git " + TTT_GIT_SHA + "), MLIR/LLVM " +
         LLVM_VERSION_STRING + ", plan format " + std::to_string(plan::kFormatMajor) + "." +
         std::to_string(plan::kFormatMinor);
}

int compile(const CompileOptions &o) {
  if (auto it = pendingPhases().find(o.compileTo); it != pendingPhases().end())
    return fail("--compile-to=" + o.compileTo + " is not available yet: it comes with " +
                it->second + "; available now: model, primitive, programs, fused, planned, plan");
  if (std::find(phaseNames().begin(), phaseNames().end(), o.compileTo) == phaseNames().end())
    return fail("unknown phase '" + o.compileTo + "'; phases: " +
                llvm::join(phaseNames(), ", "));

  MLIRContext ctx;
  ctx.loadDialect<TTTDialect, prim::PrimDialect>();
  std::string error;
  auto buffer = mlir::openInputFile(o.input, &error);
  if (!buffer)
    return fail(error);
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &ctx);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &ctx);
  if (!module)
    return 1; // diagnostics already printed with file:line:col
  SmallVector<ModelOp> models(module->getOps<ModelOp>());
  if (models.size() != 1)
    return fail(o.input + ": expected exactly one ttt.model, found " +
                std::to_string(models.size()));
  ModelOp model = models.front();

  if (o.statePassing && *o.statePassing != model.getRecipe().getStatePassing()) {
    RecipeAttr r = model.getRecipe();
    model.setRecipeAttr(RecipeAttr::get(
        &ctx, r.getOptimizer(), r.getBeta1(), r.getBeta2(), r.getEps(), r.getWeightDecay(),
        r.getGradClip(), r.getLr(), r.getLrEnd(), r.getWarmupSteps(), r.getTotalSteps(),
        r.getGlobalBatch(), r.getSeqLen(), r.getMiniBatch(), r.getInnerBaseLr(),
        r.getRematGroup(), *o.statePassing, r.getSeed(), r.getCheckpointEvery(),
        r.getMilestoneEvery()));
  }
  CompiledShape shape;
  if (std::string err = resolveShape(o, model.getRecipe(), shape); !err.empty())
    return fail(err);
  if (o.summary)
    printSummary(model, llvm::outs());

  if (o.compileTo == "model") {
    if (o.output.empty() && o.summary)
      return 0;
    return printModule(*module, o.output.empty() ? "-" : o.output);
  }
  const bool printIR =
      o.compileTo == "primitive" || o.compileTo == "programs" || o.compileTo == "fused" ||
      o.compileTo == "planned";
  if (!printIR && o.output.empty())
    return o.summary ? 0 : fail("no output file: pass -o train.bin (or --summary)");
  if (!printIR && o.output == "-")
    return fail("a plan is binary; write it to a file with -o FILE");

  // model -> primitive, on a copy (the model keeps its repeat for the parameter table): unroll
  // the layers, expand into the eval_step program.
  OwningOpRef<ModuleOp> lowered = module->clone();
  PassManager pm(&ctx);
  pm.addNestedPass<ModelOp>(createTTTUnrollRepeat());
  TTTExpandOptions expand;
  expand.batch = shape.perDeviceBatch;
  expand.seqLen = shape.seqLen;
  expand.dtype = shape.precision == "fp64" ? "f64" : "f32";
  pm.addPass(createTTTExpand(expand));
  if (o.compileTo != "primitive") {
    TTTAutodiffOptions autodiff;
    autodiff.rematGroup = model.getRecipe().getRematGroup();
    autodiff.bucketMb = o.bucketMb;
    pm.addPass(createTTTAutodiff(autodiff));
  }
  // Kernels and bytes per step before fusion, for the plan's before/after table.
  if (o.compileTo == "plan")
    pm.addPass(createTTTRecordCost());
  // After the programs: the inner loop's scans become the fused ops (optional, same results).
  if (o.fuseInnerLoop && o.compileTo != "primitive" && o.compileTo != "programs") {
    TTTFuseInnerLoopOptions fuse;
    // Only the GPU's tensor-core kernels (bf16 plans) write and read the cache.
    fuse.cache = o.innerLoopCache && shape.precision == "bf16" && o.target == "sm_90";
    pm.addPass(createTTTFuseInnerLoop(fuse));
  }
  if (o.fuseElementwise && o.compileTo != "primitive" && o.compileTo != "programs")
    pm.addPass(createTTTFuseElementwise());
  if (o.storeBf16 && shape.precision == "bf16" && o.compileTo != "primitive" &&
      o.compileTo != "programs")
    pm.addPass(createTTTStoreBf16());
  if (o.compileTo == "planned" || o.compileTo == "plan") {
    // Every plan's memory map is checked before it is printed or serialized.
    pm.addPass(createTTTPlanMemory());
    pm.addPass(createTTTVerifyMemory());
  }
  if (failed(pm.run(*lowered)))
    return 1;
  if (printIR) {
    return printModule(*lowered, o.output.empty() ? "-" : o.output);
  }
  SmallVector<prim::ProgramOp> programs(lowered->getOps<prim::ProgramOp>());
  std::vector<uint8_t> payload = buildPlanPayload(model, shape, programs);
  if (std::string err = plan::writePlanFile(o.output, payload.data(), payload.size());
      !err.empty())
    return fail(err);
  return 0;
}

int importHf(const ImportOptions &o) {
  std::string error;
  auto buffer = mlir::openInputFile(o.config, &error);
  if (!buffer)
    return fail(error);
  MLIRContext ctx;
  ctx.getOrLoadDialect<TTTDialect>();
  HfImportOptions options;
  options.modelName = o.modelName;
  options.preset = o.preset;
  options.lr = o.lr;
  options.lrEnd = o.lrEnd;
  options.warmupSteps = o.warmupSteps;
  options.totalSteps = o.totalSteps;
  options.globalBatch = o.globalBatch;
  options.seqLen = o.seqLen;
  options.rematGroup = o.rematGroup;
  options.seed = o.seed;
  options.statePassing = o.statePassing;
  OwningOpRef<ModuleOp> module =
      importHfConfig(&ctx, buffer->getBuffer(), o.config, options, error);
  if (!module)
    return fail(error);
  return printModule(*module, o.output);
}
} // namespace ttt::driver
