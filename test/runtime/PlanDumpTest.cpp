// The plan dump behind `ttt-run PLAN --dump [--json]` (tools/ttt-run/PlanDump).
#include "TestPlans.h"

#include "tools/ttt-run/PlanDump.h"
#include "ttt/schema/plan_generated.h"

#include <gtest/gtest.h>

namespace {
using namespace ttt::test;
using namespace ttt::run;
namespace fb = ttt::plan;

fb::PlanFile loadPlan(const std::vector<uint8_t> &bytes) {
  fb::PlanFile file;
  std::string error;
  EXPECT_TRUE(file.loadBytes(bytes, "toy.bin", error)) << error;
  return file;
}

std::vector<uint8_t> withHeader(const std::vector<uint8_t> &payload) {
  return fb::encodePlanFile(payload.data(), payload.size());
}

// The toy plan: embed [32000, 64]; per layer W1 [4,16,16], b1 [4,16], mlp.up [64,176], mlp_norm
// [64]; final_norm [64].
constexpr uint64_t kEmbed = 32000 * 64, kTtt = 2 * (4 * 16 * 16 + 4 * 16), kMlp = 2 * 64 * 176, kNorm = 3 * 64;
constexpr uint64_t kTotal = kEmbed + kTtt + kMlp + kNorm;

TEST(PlanDumpFormat, GroupsDigits) {
  EXPECT_EQ(groupDigits(0), "0");
  EXPECT_EQ(groupDigits(999), "999");
  EXPECT_EQ(groupDigits(1000), "1,000");
  EXPECT_EQ(groupDigits(110424144), "110,424,144");
  EXPECT_EQ(groupDigits(1285639296), "1,285,639,296");
  EXPECT_EQ(groupDigits(18446744073709551615ull), "18,446,744,073,709,551,615");
}

TEST(PlanDumpFormat, HumanBytes) {
  EXPECT_EQ(humanBytes(0), "0 B");
  EXPECT_EQ(humanBytes(1023), "1023 B");
  EXPECT_EQ(humanBytes(1024), "1 KiB");
  EXPECT_EQ(humanBytes(1536), "1.5 KiB");
  EXPECT_EQ(humanBytes(10ull << 20), "10 MiB");
  EXPECT_EQ(humanBytes(110424144ull * 4), "421 MiB");
  EXPECT_EQ(humanBytes(150115729408ull), "140 GiB");
  EXPECT_EQ(humanBytes(3ull << 40), "3 TiB");
}

TEST(PlanDumpFormat, ShortestRoundTripDoubles) {
  EXPECT_EQ(formatDouble(0.0), "0");
  EXPECT_EQ(formatDouble(3e-4), "0.0003");
  EXPECT_EQ(formatDouble(1e-6), "1e-06");
  EXPECT_EQ(formatDouble(0.02), "0.02");
  EXPECT_EQ(formatDouble(0.1), "0.1");
  EXPECT_EQ(formatDouble(10000.0), "10000");
  EXPECT_EQ(formatDouble(0.95), "0.95");
  double third = 1.0 / 3.0;
  EXPECT_EQ(std::stod(formatDouble(third)), third);
}

TEST(PlanDump, CountsParametersPerKindInTableOrder) {
  fb::PlanFile file = loadPlan(toyPlanFile());
  ParameterCounts counts = countParameters(*file.plan());
  ASSERT_EQ(counts.byKind.size(), 4u);
  EXPECT_EQ(counts.byKind[0].kind, "embedding");
  EXPECT_EQ(counts.byKind[0].values, kEmbed);
  EXPECT_EQ(counts.byKind[1].kind, "ttt_linear");
  EXPECT_EQ(counts.byKind[1].tensors, 4u);
  EXPECT_EQ(counts.byKind[1].values, kTtt);
  EXPECT_EQ(counts.byKind[2].kind, "swiglu_mlp");
  EXPECT_EQ(counts.byKind[2].values, kMlp);
  EXPECT_EQ(counts.byKind[3].kind, "rms_norm");
  EXPECT_EQ(counts.byKind[3].tensors, 3u);
  EXPECT_EQ(counts.byKind[3].values, kNorm);
  EXPECT_EQ(counts.tensors, 10u);
  EXPECT_EQ(counts.values, kTotal);
}

TEST(PlanDump, JsonHasEverySectionInAFixedOrder) {
  fb::PlanFile file = loadPlan(toyPlanFile());
  nlohmann::ordered_json j = planToJson(file, "toy.bin");
  std::vector<std::string> keys;
  for (const auto &kv : j.items())
    keys.push_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"file", "header", "provenance", "config", "recipe", "compiled",
                                            "parameters", "parameter_counts", "memory", "fusion"}));
  EXPECT_EQ(j["file"], "toy.bin");
  EXPECT_EQ(j["header"]["magic"], "TTTP");
  EXPECT_EQ(j["header"]["format_major"], fb::kFormatMajor);
  EXPECT_EQ(j["header"]["file_bytes"], file.fileSize());
  EXPECT_EQ(j["header"]["payload_bytes"], file.fileSize() - fb::kHeaderSize);
  EXPECT_EQ(j["header"]["checksum"].get<std::string>().size(), std::string("fnv1a64:").size() + 16);
  EXPECT_EQ(j["provenance"]["model_name"], "ttt_toy");
  EXPECT_EQ(j["provenance"]["flags"].size(), 4u);
  EXPECT_EQ(j["config"]["hidden_size"], 64);
  EXPECT_EQ(j["config"]["rms_norm_eps"], 1e-6);
  EXPECT_EQ(j["recipe"]["lr"], 3e-3);
  EXPECT_EQ(j["recipe"]["total_steps"], 100);
  EXPECT_EQ(j["compiled"]["precision"], "fp32");
  EXPECT_EQ(j["compiled"]["target"], "cpu");
  ASSERT_EQ(j["parameters"].size(), 10u);
  const auto &b1 = j["parameters"][2];
  EXPECT_EQ(b1["name"], "layers.0.ttt.b1");
  EXPECT_EQ(b1["shape"], nlohmann::ordered_json::array({4, 16}));
  EXPECT_EQ(b1["values"], 64);
  EXPECT_EQ(b1["dtype"], "f32");
  EXPECT_EQ(b1["init"], "zeros");
  EXPECT_EQ(b1["weight_decay"], false);
  EXPECT_EQ(b1["hf_name"], "model.layers.0.seq_modeling_block.b1");
  EXPECT_EQ(b1["hf_layout"], "unsqueeze1");
  EXPECT_EQ(b1["kind"], "ttt_linear");
  EXPECT_EQ(b1["layer"], 0);
  EXPECT_EQ(j["parameter_counts"]["values"], kTotal);
  EXPECT_EQ(j["parameter_counts"]["master_bytes"], kTotal * 4);
  EXPECT_EQ(j["parameter_counts"]["by_kind"][1]["kind"], "ttt_linear");
}

TEST(PlanDump, JsonIsStableAndParsesBack) {
  fb::PlanFile file = loadPlan(toyPlanFile());
  std::string once = planToJson(file, "toy.bin").dump(2), twice = planToJson(file, "toy.bin").dump(2);
  EXPECT_EQ(once, twice);
  nlohmann::ordered_json back = nlohmann::ordered_json::parse(once);
  EXPECT_EQ(back.dump(2), once);
}

TEST(PlanDump, AbsentTablesAreNullInJsonAndSaidInText) {
  fb::PlanFile file = loadPlan(withHeader(bareParameterPayload()));
  nlohmann::ordered_json j = planToJson(file, "bare.bin");
  EXPECT_TRUE(j["provenance"].is_null());
  EXPECT_TRUE(j["config"].is_null());
  EXPECT_TRUE(j["recipe"].is_null());
  EXPECT_TRUE(j["compiled"].is_null());
  EXPECT_EQ(j["parameter_counts"]["values"], 15);
  EXPECT_EQ(j["parameter_counts"]["by_kind"][0]["kind"], "(no kind)");
  std::string text = formatPlanText(file, "bare.bin");
  EXPECT_NE(text.find("provenance\n  (absent from this plan)"), std::string::npos) << text;
  std::string summary = formatPlanSummary(file, "bare.bin");
  EXPECT_NE(summary.find("(unnamed)"), std::string::npos) << summary;
}

TEST(PlanDump, TextShowsHeaderSectionsTableAndTotals) {
  fb::PlanFile file = loadPlan(toyPlanFile());
  std::string text = formatPlanText(file, "toy.bin");
  for (const char *expect :
       {"plan toy.bin\n", "  format    1.0 (this ttt-run reads 1.x up to 1.0)\n", "(verified)", "\nprovenance\n", "  model_name    ttt_toy\n",
        "  flags         --per-device-batch=2 --seq-len=64 --precision=fp32 --target=cpu\n",
        "\nmodel config\n", "  rms_norm_eps         1e-06\n", "  tie_word_embeddings  true\n", "\nrecipe\n",
        "  lr                0.003\n", "  rope_theta           10000\n", "\ncompiled for\n", "  precision         fp32\n",
        "\nparameters (10 tensors, 2,072,896 values)\n", "\nparameters by kind\n"})
    EXPECT_NE(text.find(expect), std::string::npos) << "missing '" << expect << "' in:\n" << text;
  // One table row: zeros init shows no std, layer index shown; embedding outside layers shows '-'.
  EXPECT_NE(text.find("layers.0.ttt.b1"), std::string::npos);
  std::string row = text.substr(text.find("  layers.0.ttt.b1"));
  row = row.substr(0, row.find('\n'));
  EXPECT_NE(row.find("[4, 16]"), std::string::npos) << row;
  EXPECT_NE(row.find("  zeros      -  no "), std::string::npos) << row;
  EXPECT_NE(row.find("unsqueeze1"), std::string::npos) << row;
  std::string embed = text.substr(text.find("  embed "));
  embed = embed.substr(0, embed.find('\n'));
  EXPECT_NE(embed.find("2,048,000"), std::string::npos) << embed;
  EXPECT_NE(embed.find("0.02"), std::string::npos) << embed;
  EXPECT_EQ(embed.back(), '-') << "layer column of a non-layer parameter: " << embed;
  std::string total = text.substr(text.rfind("  total"));
  EXPECT_NE(total.find("  total            10  2,072,896  100.0%\n"), std::string::npos) << total;
  EXPECT_NE(total.find("  master copy 7.91 MiB (8,291,584 bytes)\n"), std::string::npos) << total;
  EXPECT_NE(text.find("  embedding         1  2,048,000   98.8%\n"), std::string::npos) << text;
}

TEST(PlanDump, SummaryNamesModelShapesAndCount) {
  fb::PlanFile file = loadPlan(toyPlanFile());
  std::string s = formatPlanSummary(file, "toy.bin");
  for (const char *expect : {"toy.bin: plan format 1.0", "ttt_toy: 2 layers, hidden 64, 4 heads, vocab 32000",
                             "per-device batch 2 x seq_len 64, fp32, target cpu", "adamw, lr 0.003, 100 steps",
                             "2,072,896", "tttc 0.1.0 (0123456789ab)"})
    EXPECT_NE(s.find(expect), std::string::npos) << "missing '" << expect << "' in:\n" << s;
}
} // namespace
