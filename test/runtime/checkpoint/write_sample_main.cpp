// Writes safetensors files for check_safetensors.py, which reads them with an independent reader:
//   all.safetensors     every dtype (F64, F32, BF16, I32, I64) and metadata
//   oracle.safetensors  the dtypes test/oracle/safetensors_io.py reads (no I64)
//   hf.safetensors      exportHf of a two-parameter plan (transpose and conv layouts)
// Element k of each tensor follows a formula that the Python side recomputes.
#include "runtime/checkpoint/HfMapping.h"

#include <cstdio>

using namespace ttt::checkpoint;

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  std::vector<double> f64(15), f32(12), bf16(6);
  std::vector<int64_t> i32(5), i64 = {-5, int64_t(1) << 40, (int64_t(1) << 53) + 1};
  for (size_t k = 0; k < f64.size(); ++k)
    f64[k] = double(k) / 3.0 - 2.0;
  for (size_t k = 0; k < f32.size(); ++k)
    f32[k] = double(k) * 0.1 - 0.5;
  for (size_t k = 0; k < bf16.size(); ++k)
    bf16[k] = double(k) - 2.5;
  for (size_t k = 0; k < i32.size(); ++k)
    i32[k] = int64_t(k) * 1000003 - 2000000;

  SafetensorsFile oracle;
  oracle.tensors = {
      makeTensor("f64", DType::F64, {3, 5}, f64), makeTensor("f32", DType::F32, {4, 3}, f32),
      makeTensor("bf16", DType::BF16, {6}, bf16), makeIntTensor("i32", DType::I32, {5}, i32)};
  oracle.metadata = {{"format", "pt"}, {"writer", "ttt"}};
  SafetensorsFile all = oracle;
  all.tensors.push_back(makeIntTensor("i64", DType::I64, {3}, i64));

  flatbuffers::FlatBufferBuilder b;
  std::vector<int64_t> wShape = {2, 3}, kShape = {4, 2};
  std::vector<flatbuffers::Offset<ttt::plan::Parameter>> params = {
      ttt::plan::CreateParameterDirect(b, "w", &wShape, ttt::plan::DType::f32,
                                       ttt::plan::InitKind::normal, 0.02, true, "w.weight",
                                       ttt::plan::HfLayout::transpose),
      ttt::plan::CreateParameterDirect(b, "k", &kShape, ttt::plan::DType::f32,
                                       ttt::plan::InitKind::normal, 0.02, true, "conv.weight",
                                       ttt::plan::HfLayout::conv)};
  ttt::plan::FinishPlanBuffer(b, ttt::plan::CreatePlanDirect(b, 0, 0, 0, 0, &params));
  std::vector<std::vector<float>> values = {{0, 1, 2, 3, 4, 5}, {0, 1, 2, 3, 4, 5, 6, 7}};
  SafetensorsFile hf;
  std::string err = exportHf(*ttt::plan::GetPlan(b.GetBufferPointer()), values, DType::F32, hf);

  for (auto [name, file] : {std::pair{"all", &all}, {"oracle", &oracle}, {"hf", &hf}}) {
    if (err.empty())
      err = writeSafetensors(dir + "/" + name + ".safetensors", *file);
  }
  if (!err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  return 0;
}
