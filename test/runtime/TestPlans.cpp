#include "TestPlans.h"

#include "runtime/plan/PlanFile.h"
#include "ttt/schema/plan_generated.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace ttt::test {
namespace fb = ttt::plan;

std::vector<uint8_t> toyPlanPayload() {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<flatbuffers::String>> flags = {
      b.CreateString("--per-device-batch=2"), b.CreateString("--seq-len=64"),
      b.CreateString("--precision=fp32"), b.CreateString("--target=cpu")};
  auto prov = fb::CreateProvenanceDirect(b, "0.1.0", "0123456789ab", "19.1.7", "ttt_toy", "9e3779b97f4a7c15", &flags);
  auto config = fb::CreateModelConfig(b, /*vocab*/ 32000, /*hidden*/ 64, /*intermediate*/ 176, /*layers*/ 2,
                                      /*heads*/ 4, /*head_dim*/ 16, /*conv*/ 4, /*rope_theta*/ 10000.0,
                                      /*eps*/ 1e-6, /*init range*/ 0.02, /*tie*/ true, /*share_qk*/ true,
                                      /*gate*/ true, /*pre_conv*/ true);
  auto recipe = fb::CreateRecipeDirect(b, "adamw", 0.9, 0.95, 1e-8, 0.1, 1.0, 3e-3, 1e-5, 10, 100, 8, 64, 16, 1.0,
                                       2, false, 42, 1000, 2000);
  auto compiled = fb::CreateCompiled(b, 2, 64, fb::Precision::fp32, fb::Target::cpu);
  std::vector<flatbuffers::Offset<fb::Parameter>> params;
  auto add = [&](const char *name, std::vector<int64_t> shape, fb::InitKind init, double std, bool decay,
                 const char *hf, fb::HfLayout layout, const char *kind, int layer) {
    params.push_back(fb::CreateParameterDirect(b, name, &shape, fb::DType::f32, init, std, decay, hf, layout, kind,
                                               layer));
  };
  add("embed", {32000, 64}, fb::InitKind::normal, 0.02, true, "model.embed_tokens.weight", fb::HfLayout::same,
      "embedding", -1);
  for (int l = 0; l < 2; ++l) {
    std::string p = "layers." + std::to_string(l) + ".";
    std::string hf = "model.layers." + std::to_string(l) + ".";
    add((p + "ttt.W1").c_str(), {4, 16, 16}, fb::InitKind::normal, 0.02, true,
        (hf + "seq_modeling_block.W1").c_str(), fb::HfLayout::same, "ttt_linear", l);
    add((p + "ttt.b1").c_str(), {4, 16}, fb::InitKind::zeros, 0.0, false, (hf + "seq_modeling_block.b1").c_str(),
        fb::HfLayout::unsqueeze1, "ttt_linear", l);
    add((p + "mlp.up").c_str(), {64, 176}, fb::InitKind::normal, 0.02, true, (hf + "mlp.up_proj.weight").c_str(),
        fb::HfLayout::transpose, "swiglu_mlp", l);
    add((p + "mlp_norm").c_str(), {64}, fb::InitKind::ones, 0.0, false,
        (hf + "ffn_norm.weight").c_str(), fb::HfLayout::same, "rms_norm", l);
  }
  add("final_norm", {64}, fb::InitKind::ones, 0.0, false, "model.norm.weight", fb::HfLayout::same, "rms_norm", -1);
  auto plan = fb::CreatePlanDirect(b, prov, config, recipe, compiled, &params);
  fb::FinishPlanBuffer(b, plan);
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

std::vector<uint8_t> bareParameterPayload() {
  flatbuffers::FlatBufferBuilder b;
  std::vector<int64_t> shape = {3, 5};
  std::vector<flatbuffers::Offset<fb::Parameter>> params = {fb::CreateParameterDirect(b, "w", &shape)};
  auto plan = fb::CreatePlanDirect(b, 0, 0, 0, 0, &params);
  fb::FinishPlanBuffer(b, plan);
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

std::vector<uint8_t> toyPlanFile() {
  std::vector<uint8_t> payload = toyPlanPayload();
  return fb::encodePlanFile(payload.data(), payload.size());
}

std::string makeTempDir() {
  std::string tmpl = ::testing::TempDir() + "ttt-runtime-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data()))
    ADD_FAILURE() << "mkdtemp failed for " << tmpl;
  return buf.data();
}

void removeTree(const std::string &dir) {
  if (!dir.empty() && dir.find("ttt-runtime-test-") != std::string::npos)
    (void)!std::system(("rm -rf '" + dir + "'").c_str());
}

void writeBytes(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::vector<uint8_t> readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
} // namespace ttt::test
