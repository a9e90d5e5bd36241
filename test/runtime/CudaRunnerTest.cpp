// The CUDA runner as CI sees it (a CUDA toolkit, no GPU): it compiles and links in the CUDA build,
// and choosing a backend never touches a device — the errors a user gets without one are checked
// here. Running programs on a GPU is scripts/gpu_parity.sh's job (no GPU test is registered).
#include "runtime/exec/CudaRunner.h"

#include "ttt/schema/plan_generated.h"

#include <gtest/gtest.h>

namespace {
using namespace ttt;

// A one-instruction program: y = constant 2.5 [3], output "y".
struct TinyProgram {
  flatbuffers::FlatBufferBuilder b;
  const plan::Program *program = nullptr;
  TinyProgram() {
    std::vector<int64_t> shape{3};
    std::vector<flatbuffers::Offset<plan::Tensor>> tensors{
        plan::CreateTensorDirect(b, &shape, plan::DType::f32)};
    std::vector<int32_t> none, y{0};
    std::vector<double> value{2.5};
    std::vector<flatbuffers::Offset<plan::Instr>> instrs{
        plan::CreateInstrDirect(b, "constant", &none, &y, nullptr, nullptr, &value),
        plan::CreateInstrDirect(b, "output", &y, &none, "y")};
    b.Finish(plan::CreateProgramDirect(b, "tiny", &tensors, &instrs));
    program = flatbuffers::GetRoot<plan::Program>(b.GetBufferPointer());
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
  exec::BackendRunner<float> tpu(program, "tpu");
  EXPECT_NE(tpu.run(params, inputs, outputs).find("unknown backend 'tpu'"), std::string::npos);
  exec::NamedTensors<double> params64, outputs64;
  exec::BackendRunner<double> fp64(program, "cuda");
  std::string err = fp64.run(params64, inputs, outputs64);
  EXPECT_NE(err.find(TTT_TEST_HAVE_CUDA ? "fp32" : "without CUDA"), std::string::npos) << err;
}

TEST(CudaRunner, ConstructsWithoutTouchingADevice) {
  TinyProgram tiny;
  const plan::Program &program = *tiny.program;
  exec::CudaProgramRunner runner(program); // no CUDA call until run()
  exec::BackendRunner<float> cuda(program, "cuda");
  exec::BackendRunner<float> cpu(program, "cpu");
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
} // namespace
