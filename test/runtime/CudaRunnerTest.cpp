// The CUDA runner as CI sees it (a CUDA toolkit, no GPU): it compiles and links in the CUDA build,
// and choosing a backend never touches a device — the errors a user gets without one are checked
// here. Running programs on a GPU is scripts/gpu_check.sh's job (no GPU test is registered).
#include "runtime/exec/CudaRunner.h"

#include "ttt/schema/plan_generated.h"

#include <gtest/gtest.h>

namespace {
using namespace ttt;

// A plan of one one-instruction program: y = constant 2.5 [3], output "y".
struct TinyProgram {
  flatbuffers::FlatBufferBuilder b;
  const plan::Plan *plan = nullptr;
  const plan::Program *program = nullptr;
  explicit TinyProgram(plan::Target target = plan::Target::cpu) {
    std::vector<int64_t> shape{3};
    std::vector<flatbuffers::Offset<plan::Tensor>> tensors{
        plan::CreateTensorDirect(b, &shape, plan::DType::f32)};
    std::vector<int32_t> none, y{0};
    std::vector<double> value{2.5};
    std::vector<flatbuffers::Offset<plan::Instr>> instrs{
        plan::CreateInstrDirect(b, "constant", &none, &y, nullptr, nullptr, &value),
        plan::CreateInstrDirect(b, "output", &y, &none, "y")};
    std::vector<flatbuffers::Offset<plan::Program>> programs{
        plan::CreateProgramDirect(b, "tiny", &tensors, &instrs)};
    auto compiled = plan::CreateCompiled(b, 1, 3, plan::Precision::fp32, target);
    b.Finish(plan::CreatePlanDirect(b, 0, 0, 0, compiled, nullptr, &programs));
    plan = flatbuffers::GetRoot<plan::Plan>(b.GetBufferPointer());
    program = plan->programs()->Get(0);
  }
};

TEST(CudaRunner, AvailabilityFollowsTheBuild) {
  EXPECT_EQ(exec::cudaBackendAvailable(), bool(TTT_TEST_HAVE_CUDA));
}

TEST(CudaRunner, BackendChoiceErrors) {
  TinyProgram tiny;
  const plan::Program &program = *tiny.program;
  exec::NamedTensors<float> params, outputs;
  exec::NamedInts inputs;
  exec::BackendRunner<float> tpu(*tiny.plan, program, "tpu");
  EXPECT_NE(tpu.run(params, inputs, outputs).find("unknown backend 'tpu'"), std::string::npos);
  exec::NamedTensors<double> params64, outputs64;
  exec::BackendRunner<double> fp64(*tiny.plan, program, "cuda");
  std::string err = fp64.run(params64, inputs, outputs64);
  EXPECT_NE(err.find(TTT_TEST_HAVE_CUDA ? "fp32" : "without CUDA"), std::string::npos) << err;
}

TEST(CudaRunner, ConstructsWithoutTouchingADevice) {
  TinyProgram tiny;
  const plan::Program &program = *tiny.program;
  exec::CudaProgramRunner runner(*tiny.plan, program); // no CUDA call until run()
  exec::BackendRunner<float> cuda(*tiny.plan, program, "cuda");
  exec::BackendRunner<float> cpu(*tiny.plan, program, "cpu");
  exec::NamedTensors<float> cpuParams, cpuOutputs;
  exec::NamedInts cpuInputs;
  EXPECT_EQ(cpu.run(cpuParams, cpuInputs, cpuOutputs), "");
  EXPECT_EQ(cpuOutputs["y"], std::vector<float>(3, 2.5f));
  if (!TTT_TEST_HAVE_CUDA) {
    exec::NamedTensors<float> params, outputs;
    exec::NamedInts inputs;
    EXPECT_NE(cuda.run(params, inputs, outputs).find("without CUDA"), std::string::npos);
  }
}

// A plan compiled for the CPU is refused by the CUDA backend before any device call, with the tttc
// flag to change (in a build without CUDA: the backend is missing).
TEST(CudaRunner, RefusesAPlanForAnotherTarget) {
  TinyProgram tiny(plan::Target::cpu);
  exec::BackendRunner<float> cuda(*tiny.plan, *tiny.program, "cuda");
  exec::NamedTensors<float> params, outputs;
  exec::NamedInts inputs;
  std::string err = cuda.run(params, inputs, outputs);
  EXPECT_NE(err.find(TTT_TEST_HAVE_CUDA ? "--target sm_90" : "without CUDA"), std::string::npos)
      << err;
}
} // namespace
