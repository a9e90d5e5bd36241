#include "PlanWriter.h"

#include "passes/lib/MemoryPlan.h"

#include "runtime/plan/PlanFile.h"
#include "ttt/Dialect/TTT/TTTModel.h"
#include "ttt/Passes/KernelCost.h"
#include "ttt/Version.h"
#include "ttt/schema/plan_generated.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/raw_ostream.h"

#include <cinttypes>
#include <cstdio>

using namespace mlir;

namespace ttt::driver {
namespace {
plan::InitKind toPlan(InitKind k) {
  switch (k) {
  case InitKind::zeros: return plan::InitKind::zeros;
  case InitKind::ones: return plan::InitKind::ones;
  case InitKind::normal: return plan::InitKind::normal;
  case InitKind::truncated_normal: return plan::InitKind::truncated_normal;
  }
  llvm_unreachable("init kind");
}
plan::HfLayout toPlan(HfLayout l) {
  switch (l) {
  case HfLayout::same: return plan::HfLayout::same;
  case HfLayout::transpose: return plan::HfLayout::transpose;
  case HfLayout::conv: return plan::HfLayout::conv;
  case HfLayout::unsqueeze1: return plan::HfLayout::unsqueeze1;
  }
  llvm_unreachable("hf layout");
}

// FNV-1a of the model's printed IR (no locations): identifies the source, not its path.
std::string sourceHash(ModelOp model) {
  std::string text;
  llvm::raw_string_ostream os(text);
  model->print(os);
  os.flush();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64,
                plan::fnv1a64(reinterpret_cast<const uint8_t *>(text.data()), text.size()));
  return buf;
}
// An integer entry of a tttp.memory summary; 0 when absent.
int64_t intOr0(DictionaryAttr summary, StringRef key) {
  auto a = summary.getAs<IntegerAttr>(key);
  return a ? a.getInt() : int64_t(0);
}

plan::DType dtypeOf(Type t) {
  if (t.isF64())
    return plan::DType::f64;
  if (t.isInteger(32))
    return plan::DType::i32;
  if (t.isBF16())
    return plan::DType::bf16;
  return plan::DType::f32;
}

// Writes one tttp.program: every value gets a tensor index in definition order; each op becomes
// one Instr whose attributes go into `name`, `ints` and `floats` (layout in plan.fbs).
class ProgramWriter {
public:
  explicit ProgramWriter(flatbuffers::FlatBufferBuilder &fbb) : fbb(fbb) {}

  flatbuffers::Offset<plan::Program> write(prim::ProgramOp program) {
    auto instrs = writeBlock(program.getBody().front());
    std::vector<flatbuffers::Offset<plan::Tensor>> tensorTable;
    for (size_t i = 0; i < types.size(); ++i) {
      auto shaped = cast<ShapedType>(types[i]);
      std::vector<int64_t> shape(shaped.getShape().begin(), shaped.getShape().end());
      Operation *def = values[i].getDefiningOp();
      plan::DType dtype = def && def->hasAttr(ttt::memory::kStoreBf16Attr)
                              ? plan::DType::bf16
                              : dtypeOf(shaped.getElementType());
      tensorTable.push_back(plan::CreateTensorDirect(fbb, &shape, dtype));
    }
    return plan::CreateProgramDirect(fbb, program.getSymName().str().c_str(), &tensorTable,
                                     &instrs);
  }

  // The memory map of the program written last (ttt-plan-memory's attributes), one buffer per
  // tensor index; null when the program was not planned.
  flatbuffers::Offset<plan::ProgramMemory> memory(prim::ProgramOp program) {
    auto summary = program->getAttrOfType<DictionaryAttr>("tttp.memory");
    if (!summary)
      return 0;
    auto get = [&](StringRef key) { return intOr0(summary, key); };
    std::vector<plan::Buffer> table;
    for (Value v : values) {
      ArrayAttr list;
      unsigned index;
      if (auto r = dyn_cast<OpResult>(v)) {
        list = r.getOwner()->getAttrOfType<ArrayAttr>("tttp.buffers");
        index = r.getResultNumber();
      } else {
        auto a = cast<BlockArgument>(v);
        list = a.getOwner()->getParentOp()->getAttrOfType<ArrayAttr>("tttp.arg_buffers");
        index = a.getArgNumber();
      }
      auto entry = list && index < list.size() ? dyn_cast<ArrayAttr>(list[index]) : ArrayAttr();
      auto field = [&](unsigned i) { return cast<IntegerAttr>(entry[i]).getInt(); };
      table.push_back(entry ? plan::Buffer(plan::Region(field(0)), field(1), field(2))
                            : plan::Buffer(plan::Region::arena, -1, 0));
    }
    return plan::CreateProgramMemoryDirect(fbb, program.getSymName().str().c_str(),
                                           get("alignment"), get("params"), get("grads"),
                                           get("moments"), get("checkpoints"), get("arena"),
                                           get("arena_peak"), &table);
  }

private:
  flatbuffers::FlatBufferBuilder &fbb;
  llvm::DenseMap<Value, int32_t> ids;
  std::vector<Type> types;
  std::vector<Value> values; // by tensor index

  int32_t id(Value v) {
    auto [it, inserted] = ids.try_emplace(v, int32_t(types.size()));
    if (inserted) {
      types.push_back(v.getType());
      values.push_back(v);
    }
    return it->second;
  }

  std::vector<flatbuffers::Offset<plan::Instr>> writeBlock(Block &block) {
    std::vector<flatbuffers::Offset<plan::Instr>> out;
    for (Operation &op : block)
      out.push_back(writeOp(op));
    return out;
  }

  flatbuffers::Offset<plan::Instr> writeOp(Operation &op) {
    std::vector<int32_t> operands, results, bodyArgs;
    std::vector<int64_t> ints;
    std::vector<double> floats;
    std::string name;
    std::vector<flatbuffers::Offset<plan::Instr>> body;
    for (Value v : op.getOperands())
      operands.push_back(id(v));
    for (Value v : op.getResults())
      results.push_back(id(v));
    auto f64 = [](FloatAttr a) { return a.getValueAsDouble(); };
    llvm::TypeSwitch<Operation *>(&op)
        .Case([&](prim::ParamOp o) { name = o.getName().str(); })
        .Case([&](prim::InputOp o) { name = o.getName().str(); })
        .Case([&](prim::OutputOp o) { name = o.getName().str(); })
        .Case([&](prim::MatmulOp o) { ints = {o.getTransposeA(), o.getTransposeB()}; })
        .Case([&](prim::RmsNormOp o) { floats = {f64(o.getEpsAttr())}; })
        .Case([&](prim::LayerNormOp o) { floats = {f64(o.getEpsAttr())}; })
        .Case([&](prim::RopeOp o) {
          ints = {int64_t(o.getPeriod())};
          floats = {f64(o.getThetaAttr())};
        })
        .Case([&](prim::BinaryOp o) { name = o.getKind().str(); })
        .Case([&](prim::UnaryOp o) {
          name = o.getKind().str();
          floats = {f64(o.getAlphaAttr())};
        })
        .Case([&](prim::ReduceOp o) { name = o.getKind().str(); })
        .Case([&](prim::TransposeOp o) { ints.assign(o.getPerm().begin(), o.getPerm().end()); })
        .Case([&](prim::ConstantOp o) { floats = {f64(o.getValueAttr())}; })
        .Case([&](prim::IotaOp o) { floats = {f64(o.getStartAttr())}; })
        .Case([&](prim::SoftmaxXentOp o) { ints = {int64_t(o.getIgnoreToken())}; })
        .Case([&](prim::AccumulateGradOp o) { name = o.getName().str(); })
        .Case([&](prim::ConcatOp o) { ints = {int64_t(o.getAxis())}; })
        .Case([&](prim::SliceOp o) { ints = {int64_t(o.getAxis()), int64_t(o.getStart())}; })
        .Case([&](prim::BucketReadyOp o) {
          ints = {int64_t(o.getBucket()), int64_t(o.getBytes())};
          for (Attribute a : o.getParams())
            name += (name.empty() ? "" : "\n") + cast<StringAttr>(a).str();
        })
        .Case([&](prim::RmsNormBwdOp o) { floats = {f64(o.getEpsAttr())}; })
        .Case([&](prim::LayerNormBwdOp o) { floats = {f64(o.getEpsAttr())}; })
        .Case([&](prim::RopeBwdOp o) {
          ints = {int64_t(o.getPeriod())};
          floats = {f64(o.getThetaAttr())};
        })
        .Case([&](prim::UnaryBwdOp o) {
          name = o.getKind().str();
          floats = {f64(o.getAlphaAttr())};
        })
        .Case([&](prim::SoftmaxXentBwdOp o) { ints = {int64_t(o.getIgnoreToken())}; })
        .Case([&](prim::InnerLoopFwdOp o) {
          ints = {int64_t(o.getRematGroup()), o.getTokenMajor() ? 1 : 0};
          floats = {f64(o.getEpsAttr())};
        })
        .Case([&](prim::InnerLoopBwdOp o) {
          ints = {int64_t(o.getRematGroup()), o.getTokenMajor() ? 1 : 0};
          floats = {f64(o.getEpsAttr())};
        })
        .Case([&](prim::FusedElementwiseOp o) {
          for (Attribute a : o.getOps())
            name += (name.empty() ? "" : "\n") + cast<StringAttr>(a).str();
          ints.assign(o.getArgs().begin(), o.getArgs().end());
          floats.assign(o.getAlphas().begin(), o.getAlphas().end());
        })
        .Case([&](prim::LmHeadXentOp o) { ints = {int64_t(o.getIgnoreToken()), int64_t(o.getChunk())}; })
        .Case([&](prim::LmHeadXentBwdOp o) { ints = {int64_t(o.getIgnoreToken()), int64_t(o.getChunk())}; })
        .Case([&](prim::ScanOp o) {
          ints = {int64_t(o.getInits().size()), o.getReverse() ? 1 : 0};
          for (BlockArgument arg : o.getBody().front().getArguments())
            bodyArgs.push_back(id(arg));
          body = writeBlock(o.getBody().front());
        });
    return plan::CreateInstrDirect(fbb, op.getName().stripDialect().str().c_str(), &operands,
                                   &results, name.c_str(), &ints, &floats, &body, &bodyArgs);
  }
};
// The init program: one "init_param" instruction per parameter, in table order; ints[0] is the
// parameter's index, the result its tensor. The runtime draws each parameter from the
// counter-based generator keyed by (seed, name) with the kind and std of the parameter table.
flatbuffers::Offset<plan::Program> writeInitProgram(flatbuffers::FlatBufferBuilder &fbb,
                                                    ModelOp model, plan::DType dtype) {
  std::vector<flatbuffers::Offset<plan::Tensor>> tensors;
  std::vector<flatbuffers::Offset<plan::Instr>> instrs;
  int32_t index = 0;
  for (ParamInstance &p : enumerateParams(model)) {
    std::vector<int64_t> shape(p.op.getType().getShape().begin(), p.op.getType().getShape().end());
    tensors.push_back(plan::CreateTensorDirect(fbb, &shape, dtype));
    std::vector<int32_t> results = {index};
    std::vector<int64_t> ints = {index};
    instrs.push_back(plan::CreateInstrDirect(fbb, "init_param", nullptr, &results, p.name.c_str(),
                                             &ints));
    ++index;
  }
  return plan::CreateProgramDirect(fbb, "init", &tensors, &instrs);
}
} // namespace

// The apply_step program (spec 4.1): "reduce_grads" (the data-parallel reduction point; a no-op
// on one rank), "clip_global_norm" over every gradient (floats [max norm]), then one "adamw" per
// parameter (ints [parameter index, decay], floats [beta1, beta2, eps, weight decay]). The
// learning rate comes from the schedule (recipe, overridable by ttt-run flags).
static flatbuffers::Offset<plan::Program> writeApplyProgram(flatbuffers::FlatBufferBuilder &fbb,
                                                     ModelOp model, plan::DType dtype) {
  RecipeAttr r = model.getRecipe();
  std::vector<flatbuffers::Offset<plan::Tensor>> tensors;
  std::vector<flatbuffers::Offset<plan::Instr>> instrs;
  std::vector<int32_t> all;
  std::vector<ParamInstance> params = enumerateParams(model);
  for (ParamInstance &p : params) {
    std::vector<int64_t> shape(p.op.getType().getShape().begin(), p.op.getType().getShape().end());
    all.push_back(int32_t(tensors.size()));
    tensors.push_back(plan::CreateTensorDirect(fbb, &shape, dtype));
  }
  instrs.push_back(plan::CreateInstrDirect(fbb, "reduce_grads", &all));
  std::vector<double> clip = {r.getGradClip()};
  instrs.push_back(plan::CreateInstrDirect(fbb, "clip_global_norm", &all, nullptr, nullptr,
                                           nullptr, &clip));
  for (auto [i, p] : llvm::enumerate(params)) {
    std::vector<int32_t> operand = {int32_t(i)};
    std::vector<int64_t> ints = {int64_t(i), p.op.getNoDecay() ? 0 : 1};
    std::vector<double> floats = {r.getBeta1(), r.getBeta2(), r.getEps(), r.getWeightDecay()};
    instrs.push_back(plan::CreateInstrDirect(fbb, "adamw", &operand, nullptr, p.name.c_str(),
                                             &ints, &floats));
  }
  return plan::CreateProgramDirect(fbb, "apply_step", &tensors, &instrs);
}

flatbuffers::Offset<plan::Program> serializeProgram(flatbuffers::FlatBufferBuilder &fbb,
                                                    prim::ProgramOp program) {
  return ProgramWriter(fbb).write(program);
}

// The memory maps of init (its tensors are the parameters' master slots) and apply_step (its
// tensors are the gradient accumulators, same layout): slots as ttt-plan-memory laid them out,
// read from the planned programs' tttp.param ops; no arena.
static flatbuffers::Offset<plan::ProgramMemory>
writeParamMemory(flatbuffers::FlatBufferBuilder &fbb, const char *name, plan::Region region,
                 ModelOp model, llvm::ArrayRef<prim::ProgramOp> programOps) {
  DictionaryAttr summary;
  llvm::StringMap<std::pair<int64_t, int64_t>> slots; // parameter -> (offset, size)
  for (prim::ProgramOp program : programOps) {
    if (!summary)
      summary = program->getAttrOfType<DictionaryAttr>("tttp.memory");
    program.walk([&](prim::ParamOp param) {
      if (auto list = param->getAttrOfType<ArrayAttr>("tttp.buffers"))
        if (auto entry = dyn_cast<ArrayAttr>(list[0]))
          slots[param.getName()] = {cast<IntegerAttr>(entry[1]).getInt(),
                                    cast<IntegerAttr>(entry[2]).getInt()};
    });
  }
  if (!summary)
    return 0;
  auto get = [&](StringRef key) { return intOr0(summary, key); };
  std::vector<plan::Buffer> table;
  for (ParamInstance &p : enumerateParams(model)) {
    auto it = slots.find(p.name);
    table.push_back(it == slots.end() ? plan::Buffer(region, -1, 0)
                                      : plan::Buffer(region, it->second.first, it->second.second));
  }
  return plan::CreateProgramMemoryDirect(fbb, name, get("alignment"), get("params"), get("grads"),
                                         get("moments"), 0, 0, 0, &table);
}

std::vector<uint8_t> buildPlanPayload(ModelOp model, const CompiledShape &shape,
                                      llvm::ArrayRef<prim::ProgramOp> programOps) {
  flatbuffers::FlatBufferBuilder fbb(1 << 16);
  ConfigAttr c = model.getConfig();
  RecipeAttr r = model.getRecipe();

  std::vector<std::string> flags = {
      "--per-device-batch=" + std::to_string(shape.perDeviceBatch),
      "--seq-len=" + std::to_string(shape.seqLen), "--precision=" + shape.precision,
      "--target=" + shape.target};
  auto flagsVec = fbb.CreateVectorOfStrings(flags);
  auto prov = plan::CreateProvenance(
      fbb, fbb.CreateString(TTT_VERSION_STRING), fbb.CreateString(TTT_GIT_SHA),
      fbb.CreateString(LLVM_VERSION_STRING), fbb.CreateString(model.getSymName().str()),
      fbb.CreateString(sourceHash(model)), flagsVec);

  auto config = plan::CreateModelConfig(
      fbb, c.getVocab(), c.getHidden(), c.getIntermediate(), c.getLayers(), c.getHeads(),
      c.getHeadDim(), c.getConvWidth(), c.getRopeTheta(), c.getRmsEps(), c.getInitRange(),
      c.getTieEmbeddings(), c.getShareQk(), c.getUseGate(), c.getPreConv(), 1, 2);
  auto recipe = plan::CreateRecipe(
      fbb, fbb.CreateString(r.getOptimizer().str()), r.getBeta1(), r.getBeta2(), r.getEps(),
      r.getWeightDecay(), r.getGradClip(), r.getLr(), r.getLrEnd(), r.getWarmupSteps(),
      r.getTotalSteps(), r.getGlobalBatch(), shape.seqLen, r.getMiniBatch(), r.getInnerBaseLr(),
      r.getRematGroup(), r.getStatePassing(), r.getSeed(), r.getCheckpointEvery(),
      r.getMilestoneEvery());
  auto compiled = plan::CreateCompiled(
      fbb, shape.perDeviceBatch, shape.seqLen,
      shape.precision == "fp64"   ? plan::Precision::fp64
      : shape.precision == "fp32" ? plan::Precision::fp32
                                  : plan::Precision::bf16,
      shape.target == "cpu" ? plan::Target::cpu : plan::Target::sm_90);

  plan::DType dtype = shape.precision == "fp64" ? plan::DType::f64 : plan::DType::f32;
  std::vector<flatbuffers::Offset<plan::Parameter>> params;
  for (ParamInstance &p : enumerateParams(model)) {
    std::vector<int64_t> dims(p.op.getType().getShape().begin(), p.op.getType().getShape().end());
    double std = p.op.getStd() ? p.op.getStd()->convertToDouble() : 0.0;
    params.push_back(plan::CreateParameterDirect(
        fbb, p.name.c_str(), &dims, dtype, toPlan(p.op.getInit()), std, !p.op.getNoDecay(),
        p.hfName.c_str(), toPlan(p.op.getLayout()), p.kind.c_str(), int32_t(p.layer)));
  }
  auto paramsVec = fbb.CreateVector(params);
  std::vector<flatbuffers::Offset<plan::Program>> programs;
  std::vector<flatbuffers::Offset<plan::ProgramMemory>> memory;
  if (!programOps.empty()) {
    programs.push_back(writeInitProgram(fbb, model, dtype));
    memory.push_back(writeParamMemory(fbb, "init", plan::Region::params, model, programOps));
    programs.push_back(writeApplyProgram(fbb, model, dtype));
    memory.push_back(writeParamMemory(fbb, "apply_step", plan::Region::grads, model, programOps));
  }
  for (prim::ProgramOp program : programOps) {
    ProgramWriter writer(fbb);
    programs.push_back(writer.write(program));
    memory.push_back(writer.memory(program));
  }
  auto programsVec = fbb.CreateVector(programs);
  // The memory map is written only when every program was planned (tttc always plans).
  bool planned = llvm::all_of(memory, [](auto m) { return !m.IsNull(); });
  auto memoryVec = planned && !memory.empty() ? fbb.CreateVector(memory) : 0;
  // Kernels and bytes per step, fused (the programs as written) and not (ttt-record-cost).
  std::vector<flatbuffers::Offset<plan::ProgramCost>> costs;
  for (prim::ProgramOp program : programOps) {
    auto before = program->getAttrOfType<DictionaryAttr>("tttp.cost_unfused");
    if (!before)
      continue;
    auto get = [&](StringRef key) { return cast<IntegerAttr>(before.get(key)).getInt(); };
    KernelCost after = kernelCost(program);
    costs.push_back(plan::CreateProgramCostDirect(fbb, program.getSymName().str().c_str(),
                                                  after.kernels, after.bytes, get("kernels"),
                                                  get("bytes")));
  }
  auto costVec = costs.empty() ? 0 : fbb.CreateVector(costs);
  auto root = plan::CreatePlan(fbb, prov, config, recipe, compiled, paramsVec, programsVec,
                               memoryVec, costVec);
  plan::FinishPlanBuffer(fbb, root);
  return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}
} // namespace ttt::driver
