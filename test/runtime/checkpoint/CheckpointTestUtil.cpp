#include "CheckpointTestUtil.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace ttt::test {
namespace fb = ttt::plan;

std::vector<uint8_t> hfToyPlan(bool tied, bool withLmHead) {
  flatbuffers::FlatBufferBuilder b;
  auto config = fb::CreateModelConfig(b, /*vocab*/ 8, /*hidden*/ 4, /*intermediate*/ 8,
                                      /*layers*/ 1, /*heads*/ 2, /*head_dim*/ 2, /*conv*/ 4,
                                      10000.0, 1e-6, 0.02, tied, true, true, true);
  std::vector<flatbuffers::Offset<fb::Parameter>> params;
  auto add = [&](const char *name, std::vector<int64_t> shape, const char *hf, fb::HfLayout l) {
    params.push_back(fb::CreateParameterDirect(b, name, &shape, fb::DType::f32,
                                               fb::InitKind::normal, 0.02, true, hf, l, "x", 0));
  };
  const char *blk = "model.layers.0.seq_modeling_block.";
  add("embed", {8, 4}, "model.embed_tokens.weight", fb::HfLayout::same);
  add("layers.0.ttt.wq", {4, 4}, (std::string(blk) + "q_proj.weight").c_str(),
      fb::HfLayout::transpose);
  add("layers.0.ttt.conv_q", {4, 4}, (std::string(blk) + "conv_q.weight").c_str(),
      fb::HfLayout::conv);
  add("layers.0.ttt.b1", {2, 2}, (std::string(blk) + "b1").c_str(), fb::HfLayout::unsqueeze1);
  add("layers.0.ttt.lr_gate", {2, 4}, (std::string(blk) + "learnable_ttt_lr_weight").c_str(),
      fb::HfLayout::unsqueeze1);
  add("final_norm", {4}, "model.norm.weight", fb::HfLayout::same);
  if (withLmHead)
    add("lm_head", {4, 8}, "lm_head.weight", fb::HfLayout::transpose);
  auto plan = fb::CreatePlanDirect(b, 0, config, 0, 0, &params);
  fb::FinishPlanBuffer(b, plan);
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

std::vector<std::vector<double>> toyValues(const plan::Plan &plan) {
  std::vector<std::vector<double>> v;
  for (const fb::Parameter *p : *plan.parameters()) {
    int64_t n = 1;
    for (int64_t d : *p->shape())
      n *= d;
    std::vector<double> x(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
      x[size_t(k)] = 100.0 * double(v.size()) + double(k) + 0.25;
    v.push_back(std::move(x));
  }
  return v;
}

std::string makeCheckpointTempDir() {
  std::string tmpl = ::testing::TempDir() + "ttt-checkpoint-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data()))
    ADD_FAILURE() << "mkdtemp failed for " << tmpl;
  return buf.data();
}

void removeCheckpointTempDir(const std::string &dir) {
  if (!dir.empty() && dir.find("ttt-checkpoint-test-") != std::string::npos)
    (void)!std::system(("rm -rf '" + dir + "'").c_str());
}
} // namespace ttt::test
