// The plan <-> Hugging Face mapping: shapes and element order per layout (hand-computed examples),
// round trips through safetensors files, and every import error.
#include "runtime/checkpoint/HfMapping.h"
#include "CheckpointTestUtil.h"

#include <gtest/gtest.h>

namespace {
using namespace ttt::checkpoint;
using ttt::plan::HfLayout;
using Shape = std::vector<int64_t>;

Shape hf(const Shape &ours, HfLayout l) {
  Shape out;
  EXPECT_EQ(hfShape(ours, l, out), "");
  return out;
}

TEST(HfLayout, Shapes) {
  EXPECT_EQ(hf({3, 5}, HfLayout::same), (Shape{3, 5}));
  EXPECT_EQ(hf({64, 176}, HfLayout::transpose), (Shape{176, 64}));
  EXPECT_EQ(hf({4, 64}, HfLayout::conv), (Shape{64, 1, 4}));
  EXPECT_EQ(hf({4, 16}, HfLayout::unsqueeze1), (Shape{4, 1, 16}));
  EXPECT_EQ(hf({4}, HfLayout::unsqueeze1), (Shape{4, 1}));
  Shape out;
  EXPECT_NE(hfShape({2, 3, 4}, HfLayout::transpose, out).find("2-D"), std::string::npos);
  EXPECT_NE(hfShape({4}, HfLayout::conv, out).find("2-D"), std::string::npos);
  EXPECT_NE(hfShape({}, HfLayout::unsqueeze1, out), "");
}

TEST(HfLayout, TransposeByHand) {
  // ours [in=2, out=3] = [[0,1,2],[3,4,5]]; HF [out=3, in=2] = [[0,3],[1,4],[2,5]].
  std::vector<double> ours = {0, 1, 2, 3, 4, 5}, h(6), back(6);
  toHfLayout(HfLayout::transpose, {2, 3}, ours.data(), h.data());
  EXPECT_EQ(h, (std::vector<double>{0, 3, 1, 4, 2, 5}));
  fromHfLayout(HfLayout::transpose, {2, 3}, h.data(), back.data());
  EXPECT_EQ(back, ours);
}

TEST(HfLayout, ConvByHand) {
  // ours [width=4, channels=2]: tap j of channel c = 10 j + c. HF [c, 0, j] lists channel 0's taps
  // then channel 1's; tap j = 3 (the current token) is last.
  std::vector<float> ours = {0, 1, 10, 11, 20, 21, 30, 31}, h(8), back(8);
  toHfLayout(HfLayout::conv, {4, 2}, ours.data(), h.data());
  EXPECT_EQ(h, (std::vector<float>{0, 10, 20, 30, 1, 11, 21, 31}));
  fromHfLayout(HfLayout::conv, {4, 2}, h.data(), back.data());
  EXPECT_EQ(back, ours);
}

TEST(HfLayout, SameAndUnsqueezeKeepTheOrder) {
  std::vector<double> ours = {1, 2, 3, 4, 5, 6}, h(6);
  for (HfLayout l : {HfLayout::same, HfLayout::unsqueeze1}) {
    toHfLayout(l, {2, 3}, ours.data(), h.data());
    EXPECT_EQ(h, ours);
  }
}

TEST(HfLayout, RoundTripOfLargerTensors) {
  for (HfLayout l : {HfLayout::same, HfLayout::transpose, HfLayout::conv, HfLayout::unsqueeze1}) {
    Shape s = {7, 13};
    std::vector<double> ours(91), h(91), back(91);
    for (size_t i = 0; i < ours.size(); ++i)
      ours[i] = double(i * 7919 % 1000);
    toHfLayout(l, s, ours.data(), h.data());
    fromHfLayout(l, s, h.data(), back.data());
    EXPECT_EQ(back, ours) << ttt::plan::EnumNameHfLayout(l);
  }
}

class HfMappingTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir = ttt::test::makeCheckpointTempDir();
    payload = ttt::test::hfToyPlan(/*tied*/ true);
    values = ttt::test::toyValues(plan());
  }
  void TearDown() override { ttt::test::removeCheckpointTempDir(dir); }
  const ttt::plan::Plan &plan() const { return ttt::test::planOf(payload); }
  SafetensorsFile exported(DType d = DType::F32) {
    SafetensorsFile f;
    EXPECT_EQ(exportHf(plan(), values, d, f), "");
    return f;
  }
  std::string importError(const SafetensorsFile &f, HfImportReport *rep = nullptr,
                          HfImportOptions opt = {}) {
    std::vector<std::vector<double>> got;
    return importHf(plan(), f, "model.safetensors", got, opt, rep);
  }
  std::string dir;
  std::vector<uint8_t> payload;
  std::vector<std::vector<double>> values;
};

TEST_F(HfMappingTest, ExportUsesHfNamesShapesAndOrder) {
  SafetensorsFile f = exported(DType::F64);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.tensors.size(), 6u); // the tied lm_head is left out
  EXPECT_EQ(f.find("lm_head.weight"), nullptr);
  const char *blk = "model.layers.0.seq_modeling_block.";
  const Tensor *q = f.find(std::string(blk) + "q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (Shape{4, 4}));
  // q is parameter 1: ours[i][o] = 100 + 4 i + o + 0.25, HF[o][i] = ours[i][o].
  EXPECT_EQ(q->at(1 * 4 + 2), 100 + 4 * 2 + 1 + 0.25);
  const Tensor *conv = f.find(std::string(blk) + "conv_q.weight");
  EXPECT_EQ(conv->shape, (Shape{4, 1, 4}));
  // conv is parameter 2: ours[j][c] = 200 + 4 j + c + 0.25; HF[c][0][j].
  EXPECT_EQ(conv->at(3 * 4 + 1), 200 + 4 * 1 + 3 + 0.25);
  EXPECT_EQ(f.find(std::string(blk) + "b1")->shape, (Shape{2, 1, 2}));
  EXPECT_EQ(f.find(std::string(blk) + "learnable_ttt_lr_weight")->shape, (Shape{2, 1, 4}));
  EXPECT_EQ(f.find("model.norm.weight")->shape, (Shape{4}));
}

TEST_F(HfMappingTest, RoundTripThroughAFileInEachFloatDtype) {
  for (DType d : {DType::F64, DType::F32, DType::BF16}) {
    std::string path = dir + "/model-" + dtypeName(d) + ".safetensors";
    ASSERT_EQ(writeSafetensors(path, exported(d)), "");
    SafetensorsFile f;
    ASSERT_EQ(readSafetensors(path, f), "");
    std::vector<std::vector<double>> asDouble;
    std::vector<std::vector<float>> asFloat;
    ASSERT_EQ(importHf(plan(), f, path, asDouble), "");
    ASSERT_EQ(importHf(plan(), f, path, asFloat), "");
    for (size_t p = 0; p < values.size(); ++p)
      for (size_t k = 0; k < values[p].size(); ++k) {
        double v = values[p][k];
        double want = d == DType::F64   ? v
                      : d == DType::F32 ? double(float(v))
                                        : double(bf16ToFloat(floatToBf16(float(v))));
        ASSERT_EQ(asDouble[p][k], want) << dtypeName(d) << " parameter " << p << " element " << k;
        ASSERT_EQ(asFloat[p][k], float(want)) << dtypeName(d) << " parameter " << p;
      }
  }
}

TEST_F(HfMappingTest, FloatValuesExportToo) {
  std::vector<std::vector<float>> fv;
  for (const auto &v : values)
    fv.emplace_back(v.begin(), v.end());
  SafetensorsFile f;
  ASSERT_EQ(exportHf(plan(), fv, DType::F32, f), "");
  std::vector<std::vector<float>> back;
  ASSERT_EQ(importHf(plan(), f, "m", back), "");
  EXPECT_EQ(back, fv);
  EXPECT_NE(exportHf(plan(), fv, DType::I32, f).find("F64, F32 or BF16"), std::string::npos);
  fv.pop_back();
  EXPECT_NE(exportHf(plan(), fv, DType::F32, f).find("value arrays"), std::string::npos);
}

TEST_F(HfMappingTest, MissingTensorIsNamed) {
  SafetensorsFile f = exported();
  f.tensors.erase(f.tensors.begin() + 1);
  std::string err = importError(f);
  EXPECT_NE(err.find("missing"), std::string::npos) << err;
  EXPECT_NE(err.find("q_proj.weight"), std::string::npos) << err;
  EXPECT_EQ(err.rfind("model.safetensors: ", 0), 0u) << err;
}

TEST_F(HfMappingTest, WrongShapeIsNamedWithTheExpectedShape) {
  SafetensorsFile f = exported();
  Tensor *conv = &f.tensors[2];
  conv->shape = {4, 4, 1};
  std::string err = importError(f);
  EXPECT_NE(err.find("conv_q.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("needs [4, 1, 4]"), std::string::npos) << err;
}

TEST_F(HfMappingTest, IntegerTensorForAFloatParameterIsAnError) {
  SafetensorsFile f = exported();
  f.tensors[5] = makeIntTensor("model.norm.weight", DType::I32, {4}, {1, 1, 1, 1});
  std::string err = importError(f);
  EXPECT_NE(err.find("dtype I32"), std::string::npos) << err;
}

TEST_F(HfMappingTest, UnexpectedTensorsAreReported) {
  SafetensorsFile f = exported();
  f.tensors.push_back(makeTensor("model.layers.0.extra", DType::F32, {1}, std::vector<float>{0}));
  std::string err = importError(f);
  EXPECT_NE(err.find("does not use: model.layers.0.extra"), std::string::npos) << err;
  HfImportReport rep;
  HfImportOptions allow;
  allow.allowUnexpected = true;
  EXPECT_EQ(importError(f, &rep, allow), "");
  EXPECT_EQ(rep.unexpected, std::vector<std::string>{"model.layers.0.extra"});
}

TEST_F(HfMappingTest, TiedLmHeadIsAcceptedWhenEqualToTheEmbedding) {
  SafetensorsFile f = exported();
  Tensor head = *f.find("model.embed_tokens.weight");
  head.name = "lm_head.weight";
  f.tensors.push_back(head);
  HfImportReport rep;
  EXPECT_EQ(importError(f, &rep), "");
  EXPECT_TRUE(rep.tiedLmHeadChecked);
  EXPECT_TRUE(rep.unexpected.empty());

  f.tensors.back() = makeTensor("lm_head.weight", DType::F64, head.shape,
                                std::vector<double>(32, 0.25)); // other dtype, other values
  std::string err = importError(f);
  EXPECT_NE(err.find("differs from 'model.embed_tokens.weight' at element 1"), std::string::npos)
      << err;
  f.tensors.back().shape = {4, 8};
  err = importError(f);
  EXPECT_NE(err.find("tied embedding is [8, 4]"), std::string::npos) << err;
}

TEST_F(HfMappingTest, UntiedPlanTreatsLmHeadAsAParameter) {
  payload = ttt::test::hfToyPlan(/*tied*/ false, /*withLmHead*/ true);
  values = ttt::test::toyValues(plan());
  SafetensorsFile f = exported();
  const Tensor *head = f.find("lm_head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->shape, (Shape{8, 4}));
  EXPECT_EQ(importError(f), "");

  // Without tying and without an lm_head parameter, an lm_head in the file is unexpected.
  payload = ttt::test::hfToyPlan(/*tied*/ false, /*withLmHead*/ false);
  values = ttt::test::toyValues(plan());
  EXPECT_NE(importError(f).find("does not use: lm_head.weight"), std::string::npos);
}
} // namespace
