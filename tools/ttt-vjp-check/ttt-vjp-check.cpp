// ttt-vjp-check FILE.mlir: checks the gradients that ttt-autodiff derives for a small
// `tttp.program "eval_step"` against central finite differences, in fp64 on the CPU backend.
//
// The program declares its inputs with tttp.param (f64) and names one result `tttp.output "out"`
// of any shape (integer inputs: tttp.input with an attribute `max`; a parameter with the unit
// attribute `positive` is drawn in [0.5, inf), for log/sqrt/div). The tool turns it into the scalar loss = sum(out * R) with a fixed random R,
// runs ttt-autodiff (remat group from --remat-group), draws every parameter from a seeded
// normal, and compares each gradient with (loss(p + h e_i) - loss(p - h e_i)) / 2h on every
// element. Prints one line per parameter and "ok" or "FAIL"; exits 1 on failure.
#include "tools/tttc/PlanWriter.h"

#include "runtime/exec/Interpreter.h"
#include "ttt/Dialect/Prim/PrimOps.h"
#include "ttt/Passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <random>

using namespace mlir;
namespace p = ttt::prim;

static llvm::cl::opt<std::string> inputFile(llvm::cl::Positional, llvm::cl::desc("<input.mlir>"),
                                            llvm::cl::Required);
static llvm::cl::opt<int64_t> rematGroup("remat-group", llvm::cl::init(2),
                                         llvm::cl::desc("scan steps per remat group"));
static llvm::cl::opt<double> tolerance("tolerance", llvm::cl::init(1e-7),
                                       llvm::cl::desc("max relative error by norm"));
static llvm::cl::opt<double> step("h", llvm::cl::init(1e-5), llvm::cl::desc("FD step"));
static llvm::cl::opt<bool> printIR("print-ir", llvm::cl::desc("print the module after autodiff"));

namespace {
// out -> loss = sum(out * R), R a parameter "__r" that is not checked.
LogicalResult addScalarLoss(p::ProgramOp program) {
  p::OutputOp output;
  for (auto o : program.getBody().getOps<p::OutputOp>())
    if (o.getName() == "out")
      output = o;
  if (!output)
    return program.emitError() << "needs tttp.output \"out\"";
  OpBuilder b(output);
  Location loc = output.getLoc();
  Value out = output.getValue();
  auto type = cast<RankedTensorType>(out.getType());
  Value r = b.create<p::ParamOp>(loc, type, "__r");
  Value prod = b.create<p::BinaryOp>(loc, type, out, r, "mul");
  auto flat = RankedTensorType::get({type.getNumElements()}, type.getElementType());
  Value f = b.create<p::ReshapeOp>(loc, flat, prod);
  Value loss = b.create<p::ReduceOp>(loc, RankedTensorType::get({}, type.getElementType()), f,
                                     "sum");
  b.create<p::OutputOp>(loc, "loss", loss);
  output.erase();
  return success();
}
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  llvm::cl::ParseCommandLineOptions(argc, argv, "ttt autodiff finite-difference check\n");
  MLIRContext ctx;
  ctx.loadDialect<p::PrimDialect>();
  llvm::SourceMgr sourceMgr;
  std::string error;
  auto buffer = openInputFile(inputFile, &error);
  if (!buffer) {
    llvm::errs() << error << "\n";
    return 1;
  }
  sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  SourceMgrDiagnosticHandler handler(sourceMgr, &ctx);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &ctx);
  if (!module)
    return 1;
  p::ProgramOp eval;
  for (auto prog : module->getOps<p::ProgramOp>())
    if (prog.getSymName() == "eval_step")
      eval = prog;
  if (!eval || failed(addScalarLoss(eval)))
    return 1;
  PassManager pm(&ctx);
  ttt::TTTAutodiffOptions options;
  options.rematGroup = rematGroup;
  pm.addPass(ttt::createTTTAutodiff(options));
  if (failed(pm.run(*module)))
    return 1;

  if (printIR)
    module->print(llvm::outs());

  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<ttt::plan::Program>> programs;
  for (auto prog : module->getOps<p::ProgramOp>())
    programs.push_back(ttt::driver::serializeProgram(fbb, prog));
  auto vec = fbb.CreateVector(programs);
  ttt::plan::PlanBuilder pb(fbb);
  pb.add_programs(vec);
  ttt::plan::FinishPlanBuffer(fbb, pb.Finish());
  const ttt::plan::Plan *plan = ttt::plan::GetPlan(fbb.GetBufferPointer());
  const ttt::plan::Program *evalProg = ttt::exec::findProgram(*plan, "eval_step");
  const ttt::plan::Program *microProg = ttt::exec::findProgram(*plan, "micro_step");

  // Seeded random parameters (normal, shifted away from zero for log/sqrt/div inputs).
  std::mt19937_64 rng(1234);
  std::normal_distribution<double> normal(0.0, 1.0);
  ttt::exec::NamedTensors<double> params;
  std::vector<std::string> names;
  for (auto param : eval.getBody().getOps<p::ParamOp>()) {
    std::vector<double> v(size_t(param.getType().getNumElements()));
    bool positive = param->hasAttr("positive");
    for (double &x : v)
      x = positive ? 0.5 + std::fabs(normal(rng)) : normal(rng);
    params[param.getName().str()] = v;
    if (param.getName() != "__r")
      names.push_back(param.getName().str());
  }
  // Integer inputs (token ids) uniform in [0, max), `max` an attribute of the tttp.input.
  ttt::exec::NamedInts inputs;
  for (auto input : eval.getBody().getOps<p::InputOp>()) {
    auto max = input->getAttrOfType<IntegerAttr>("max");
    if (!max) {
      input.emitError() << "needs an integer attribute `max` (ids are drawn in [0, max))";
      return 1;
    }
    std::uniform_int_distribution<int32_t> ids(0, int32_t(max.getInt()) - 1);
    std::vector<int32_t> v(size_t(cast<ShapedType>(input.getType()).getNumElements()));
    for (int32_t &id : v)
      id = ids(rng);
    inputs[input.getName().str()] = v;
  }
  auto lossOf = [&](const ttt::exec::NamedTensors<double> &ps) {
    ttt::exec::NamedTensors<double> out;
    std::string err = ttt::exec::runProgram<double>(*evalProg, ps, inputs, out);
    if (!err.empty()) {
      llvm::errs() << err << "\n";
      exit(1);
    }
    return out.at("loss").at(0);
  };
  ttt::exec::NamedTensors<double> outs, grads;
  for (auto &[name, v] : params)
    grads[name].assign(v.size(), 0.0);
  ttt::exec::GradientSink<double> sink{&grads, 1.0, nullptr};
  if (std::string err = ttt::exec::runProgram<double>(*microProg, params, inputs, outs, &sink);
      !err.empty()) {
    llvm::errs() << err << "\n";
    return 1;
  }
  double base = lossOf(params), microLoss = outs.at("loss").at(0);
  bool ok = std::fabs(base - microLoss) <= 1e-12 * std::max(1.0, std::fabs(base));
  llvm::outs() << llvm::format("loss %.17g, micro_step loss %.17g %s\n", base, microLoss,
                               ok ? "ok" : "FAIL");
  for (const std::string &name : names) {
    const std::vector<double> &g = grads.at(name);
    std::vector<double> &v = params[name];
    double diff2 = 0, ref2 = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      double keep = v[i];
      v[i] = keep + step;
      double up = lossOf(params);
      v[i] = keep - step;
      double down = lossOf(params);
      v[i] = keep;
      double fd = (up - down) / (2 * step);
      diff2 += (fd - g[i]) * (fd - g[i]);
      ref2 += fd * fd;
    }
    double rel = std::sqrt(diff2) / std::max(std::sqrt(ref2), 1e-300);
    bool good = rel < tolerance;
    ok &= good;
    llvm::outs() << llvm::format("grad %s: relative error %.3e (|g| %.3e) %s\n", name.c_str(),
                                 rel, std::sqrt(ref2), good ? "ok" : "FAIL");
  }
  llvm::outs() << (ok ? "all gradients ok\n" : "FAIL\n");
  return ok ? 0 : 1;
}
