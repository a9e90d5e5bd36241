// The ttt-run executable end to end: exit codes, one-line errors, the reserved modes.
#include "TestPlans.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <sys/wait.h>

namespace {
using namespace ttt::test;

struct Result {
  int exitCode = -1;
  std::string out, err;
};

std::string slurp(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class RunCli : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = makeTempDir();
    plan_ = dir_ + "/train.bin";
    writeBytes(plan_, toyPlanFile());
  }
  void TearDown() override { removeTree(dir_); }

  Result run(const std::string &args) {
    std::string cmd = std::string("'") + TTT_RUN_EXE + "' " + args + " >'" + dir_ + "/out' 2>'" + dir_ + "/err'";
    int status = std::system(cmd.c_str());
    Result r;
    r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(dir_ + "/out");
    r.err = slurp(dir_ + "/err");
    return r;
  }
  // stderr is exactly one line that starts with the error prefix.
  static void expectOneLineError(const Result &r) {
    EXPECT_EQ(r.err.rfind("ttt-run: error: ", 0), 0u) << r.err;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
  }

  std::string dir_, plan_;
};

TEST_F(RunCli, VersionNamesGitShaFormatAndBackends) {
  Result r = run("--version");
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out.rfind("ttt-run ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("(git "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("plan format 1.0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(TTT_TEST_HAVE_CUDA ? "backends: cpu, cuda (CUDA " : "backends: cpu\n"), std::string::npos)
      << r.out;
}

TEST_F(RunCli, HelpShowsTheGrammar) {
  Result r = run("--help");
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_NE(r.out.find("ttt-run PLAN --dump [--json]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("devices"), std::string::npos) << r.out;
}

TEST_F(RunCli, DumpPrintsThePlan) {
  Result r = run("'" + plan_ + "' --dump");
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("parameters by kind"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2,072,896"), std::string::npos) << r.out;
}

TEST_F(RunCli, DumpJsonIsOneJsonDocument) {
  Result r = run("'" + plan_ + "' --dump --json");
  EXPECT_EQ(r.exitCode, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parameter_counts"]["values"], 2072896);
  EXPECT_EQ(j["file"], plan_);
}

TEST_F(RunCli, JsonWithoutDumpIsAUsageError) {
  Result r = run("'" + plan_ + "' --json");
  EXPECT_EQ(r.exitCode, 2);
  expectOneLineError(r);
  EXPECT_NE(r.err.find("--dump"), std::string::npos) << r.err;
}

TEST_F(RunCli, TrainingAPlanWithoutProgramsIsOneLineError) {
  // ttt-run PLAN trains; this test plan carries only the tables, no programs.
  Result r = run("'" + plan_ + "'");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(r.err.rfind("ttt-run: error: the plan has no micro_step/apply_step program", 0), 0u)
      << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

// --benchmark and --profile time the CUDA backend: elsewhere they say which flag to add, after the
// plan has been checked.
TEST_F(RunCli, BenchmarkAndProfileNeedTheCudaBackend) {
  for (const char *mode : {"--benchmark 3", "--profile"}) {
    Result r = run("'" + plan_ + "' " + mode);
    EXPECT_EQ(r.exitCode, 1) << mode;
    EXPECT_NE(r.err.find("add --backend cuda"), std::string::npos) << r.err;
    expectOneLineError(r);
    EXPECT_EQ(r.out, "") << mode;
  }
}

TEST_F(RunCli, BenchmarkChecksThePlanFirst) {
  Result r = run("'" + dir_ + "/missing.bin' --benchmark 3 --backend cuda");
  EXPECT_EQ(r.exitCode, 1);
  expectOneLineError(r);
  EXPECT_NE(r.err.find("cannot open plan"), std::string::npos) << r.err;
}

TEST_F(RunCli, MissingPlanIsOneLineNamingTheFile) {
  Result r = run("'" + dir_ + "/missing.bin' --dump");
  EXPECT_EQ(r.exitCode, 1);
  expectOneLineError(r);
  EXPECT_NE(r.err.find(dir_ + "/missing.bin: cannot open plan"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(RunCli, EachBadPlanIsOneDistinctLine) {
  std::vector<uint8_t> good = toyPlanFile();
  std::vector<std::pair<std::string, std::vector<uint8_t>>> cases;
  cases.push_back({"magic", good});
  cases.back().second[1] = 'Z';
  cases.push_back({"truncated", std::vector<uint8_t>(good.begin(), good.end() - 9)});
  cases.push_back({"newer", good});
  cases.back().second[4] = 9;
  cases.push_back({"flipped", good});
  cases.back().second[good.size() / 2] ^= 0x40;
  std::vector<std::string> seen;
  for (const auto &[label, bytes] : cases) {
    std::string path = dir_ + "/" + label + ".bin";
    writeBytes(path, bytes);
    Result r = run("'" + path + "' --dump");
    EXPECT_EQ(r.exitCode, 1) << label;
    expectOneLineError(r);
    EXPECT_NE(r.err.find(path + ": "), std::string::npos) << r.err;
    for (const std::string &other : seen)
      EXPECT_NE(r.err.substr(r.err.find(": ", 16)), other) << label;
    seen.push_back(r.err.substr(r.err.find(": ", 16)));
  }
}

TEST_F(RunCli, NoArgumentsIsAUsageError) {
  Result r = run("");
  EXPECT_EQ(r.exitCode, 2);
  expectOneLineError(r);
  EXPECT_NE(r.err.find("no plan given"), std::string::npos) << r.err;
}

TEST_F(RunCli, UnknownFlagIsOneLine) {
  Result r = run("'" + plan_ + "' --no-such-flag");
  EXPECT_EQ(r.exitCode, 2);
  expectOneLineError(r);
}

TEST_F(RunCli, PlanAndSubcommandTogetherAreRefused) {
  Result r = run("'" + plan_ + "' devices");
  EXPECT_EQ(r.exitCode, 2);
  expectOneLineError(r);
}

TEST_F(RunCli, DevicesNeverCrashes) {
  Result r = run("devices");
  if (!TTT_TEST_HAVE_CUDA) {
    EXPECT_EQ(r.exitCode, 1);
    expectOneLineError(r);
    EXPECT_NE(r.err.find("this build has no CUDA backend"), std::string::npos) << r.err;
    return;
  }
  // With a CUDA backend: a list on a GPU machine, one clear line without a driver or GPU.
  if (r.exitCode == 0) {
    EXPECT_NE(r.out.find("visible"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" SMs "), std::string::npos) << r.out;
  } else {
    EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
    expectOneLineError(r);
  }
}

TEST_F(RunCli, DevicesJson) {
  Result r = run("devices --json");
  if (r.exitCode != 0) {
    EXPECT_EQ(r.exitCode, 1);
    expectOneLineError(r);
    return;
  }
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["gpus"].is_array());
  EXPECT_FALSE(j["gpus"].empty());
}
} // namespace
