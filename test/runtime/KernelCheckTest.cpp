// `ttt-run kernel-check` without a GPU (runtime/exec/KernelCheck.h): the cases cover every CUDA
// launcher with valid, never-zero inputs; prepare's files read back bit for bit; and the check's
// comparison is exercised with the CPU backend's fp32 results standing in for the device's: they
// pass at 1e-5, while a perturbed output, a NaN, an Inf, a wrong size or two runs that differ in
// one bit fail, and a case without a launcher is skipped, not passed. The GPU run itself is the
// GPU machine's (docs/cli.md, kernel-check).
#include "runtime/exec/KernelCheck.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>

namespace {
using namespace ttt::kcheck;
namespace fs = std::filesystem;

// The cases of one seed, made once (about a second) and shared by the tests.
const std::vector<Case> &cases() {
  static const std::vector<Case> all = makeCases(7);
  return all;
}
const Case &caseNamed(const std::string &name) {
  for (const Case &c : cases())
    if (c.name == name)
      return c;
  throw std::invalid_argument("no case " + name);
}

std::string tempDir() {
  std::string pattern = (fs::temp_directory_path() / "ttt-kernel-check-XXXXXX").string();
  if (!mkdtemp(pattern.data()))
    throw std::runtime_error("mkdtemp failed");
  return pattern;
}

std::vector<std::vector<float>> cpuResults(const Case &c) {
  CpuFloatDevice cpu;
  std::vector<std::vector<float>> out;
  EXPECT_EQ(cpu.run(c, out), "") << c.name;
  return out;
}

TEST(KernelCheck, CasesCoverEveryLauncher) {
  std::set<std::string> kinds, names;
  std::map<std::string, std::set<std::string>> ops;
  for (const Case &c : cases()) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case " << c.name;
    EXPECT_EQ(c.name.rfind(c.kind, 0), 0u) << c.name << " should start with its kind";
    kinds.insert(c.kind);
    if (c.params.contains("op"))
      ops[c.kind].insert(c.params.at("op").get<std::string>());
    EXPECT_FALSE(c.outputs.empty()) << c.name;
    EXPECT_FALSE(c.desc.empty()) << c.name;
  }
  for (const KindInfo &k : kKinds)
    EXPECT_TRUE(kinds.count(k.kind)) << "no case for " << k.kind << " (" << k.launchers << ")";
  EXPECT_EQ(kinds.size(), kKinds.size());
  EXPECT_EQ(ops["binary"], (std::set<std::string>{"add", "sub", "mul", "div", "max"}));
  const std::set<std::string> unary = {"neg",     "exp",  "log",       "sqrt", "rsqrt", "reciprocal",
                                       "sigmoid", "silu", "gelu_tanh", "relu", "scale", "add_scalar"};
  EXPECT_EQ(ops["unary"], unary);
  EXPECT_EQ(ops["unary_bwd"], unary);
  EXPECT_EQ(ops["reduce"], (std::set<std::string>{"sum", "mean", "max"}));
  // Both rope directions; the inner loop at head dims 64 and 96, mini-batch 16, group 4.
  EXPECT_EQ(caseNamed("rope.fwd").params.at("direction").get<double>(), 1.0);
  EXPECT_EQ(caseNamed("rope.bwd").params.at("direction").get<double>(), -1.0);
  // The ".tc" cases are bf16 (the tensor-core kernels, InnerLoopMath::TensorCore).
  for (const char *name : {"inner_loop_fwd.f64", "inner_loop_bwd.f64", "inner_loop_fwd.f96",
                           "inner_loop_bwd.f96", "inner_loop_fwd.tc.f64", "inner_loop_bwd.tc.f64",
                           "inner_loop_fwd.tc.f96", "inner_loop_bwd.tc.f96"}) {
    const Case &c = caseNamed(name);
    EXPECT_EQ(c.mode, std::string(name).find(".tc.") != std::string::npos ? Mode::bf16 : Mode::fp32)
        << name;
    const Shape q = c.input("q").shape;
    EXPECT_EQ(q[3], 16) << name;
    EXPECT_EQ(q[4], std::string(name).back() == '4' ? 64 : 96) << name;
    EXPECT_EQ(c.params.at("group").get<int64_t>(), 4) << name;
    EXPECT_EQ(q[0] / 4, 2) << name << ": two remat groups";
    EXPECT_FALSE(innerLoopShape(c).tokenMajor) << name;
  }
  // The tensor-core backward also runs reading the inner-loop cache (the device's forward
  // writes it first), token major and at head dim 96: the same inputs and references, bf16.
  for (const char *twin : {"tc.f96", "tc.tm.f64"}) {
    const Case &plain = caseNamed(std::string("inner_loop_bwd.") + twin);
    const Case &cached = caseNamed(std::string("inner_loop_bwd.cache.") + twin);
    EXPECT_EQ(cached.mode, Mode::bf16) << twin;
    EXPECT_TRUE(cached.params.value("cache", false)) << twin;
    EXPECT_FALSE(plain.params.value("cache", false)) << twin;
    ASSERT_EQ(cached.inputs.size(), plain.inputs.size()) << twin;
    for (size_t i = 0; i < plain.inputs.size(); ++i)
      EXPECT_EQ(cached.inputs[i].f32, plain.inputs[i].f32) << twin << " " << plain.inputs[i].name;
    EXPECT_EQ(cached.outputs.size(), plain.outputs.size()) << twin;
  }
  // Token major ([B, n, b, H, f]) at head dim 64 on both kernel families, heads > 1 (and batch
  // > 1 for the exact kernels).
  for (const char *name : {"inner_loop_fwd.tm.f64", "inner_loop_bwd.tm.f64",
                           "inner_loop_fwd.tc.tm.f64", "inner_loop_bwd.tc.tm.f64"}) {
    const Case &c = caseNamed(name);
    EXPECT_EQ(c.mode, std::string(name).find(".tc.") != std::string::npos ? Mode::bf16 : Mode::fp32)
        << name;
    const ttt::cpu::InnerLoopShape s = innerLoopShape(c);
    EXPECT_TRUE(s.tokenMajor) << name;
    EXPECT_EQ(c.input("q").shape, (Shape{s.batch, s.n, 16, s.heads, 64})) << name;
    EXPECT_EQ(c.input("eta").shape, (Shape{s.batch, s.n, 16, s.heads})) << name;
    EXPECT_GT(s.batch, c.mode == Mode::fp32 ? 1 : 0) << name;
    EXPECT_GT(s.heads, 1) << name;
    EXPECT_GT(s.n, 1) << name;
    EXPECT_EQ(s.n % s.group, 0) << name;
  }
  // Broadcasting binary cases, and the matmul hook in both modes.
  EXPECT_NE(caseNamed("binary.add").input("b").shape, caseNamed("binary.add").input("a").shape);
  EXPECT_EQ(caseNamed("matmul.fp32.plain").mode, Mode::fp32);
  EXPECT_EQ(caseNamed("matmul.bf16.plain").mode, Mode::bf16);
}

TEST(KernelCheck, InputsAreValidAndNeverZero) {
  for (const Case &c : cases()) {
    for (const Tensor &t : c.inputs) {
      bool nonzero = false;
      for (float v : t.f32) {
        ASSERT_TRUE(std::isfinite(v)) << c.name << "." << t.name;
        nonzero |= v != 0;
      }
      for (int32_t v : t.i32)
        nonzero |= v != 0;
      EXPECT_TRUE(nonzero) << c.name << "." << t.name << " is all zeros";
      EXPECT_EQ(int64_t(t.dtype == DType::i32 ? t.i32.size() : t.f32.size()), t.size());
    }
    for (const Tensor &t : c.outputs) {
      EXPECT_EQ(t.dtype, DType::f64);
      EXPECT_EQ(int64_t(t.f64.size()), t.size());
    }
    // Positive inputs where the op needs them.
    const std::string op = c.params.value("op", "");
    if ((c.kind == "unary" || c.kind == "unary_bwd") &&
        (op == "log" || op == "sqrt" || op == "rsqrt" || op == "reciprocal")) {
      for (float v : c.input("x").f32) {
        ASSERT_GT(v, 0.0f) << c.name;
      }
    }
    // Targets: in the vocabulary, some of them the ignore token.
    if (c.params.contains("ignore")) {
      const int64_t ignore = c.params.at("ignore").get<int64_t>();
      const int64_t vocab = c.kind == "softmax_xent" || c.kind == "softmax_xent_bwd"
                                ? c.input("logits").shape.back()
                                : c.input("table").shape[0];
      int ignored = 0;
      for (int32_t t : c.input("targets").i32) {
        EXPECT_TRUE(t >= 0 && t < vocab) << c.name;
        ignored += t == ignore;
      }
      EXPECT_GT(ignored, 0) << c.name;
      EXPECT_LT(ignored, int(c.input("targets").i32.size())) << c.name;
    }
  }
  // bf16 cases hold bf16-exact operands (the low 16 bits zero).
  for (const Tensor &t : caseNamed("matmul.bf16.plain").inputs)
    for (float v : t.f32) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      ASSERT_EQ(bits & 0xffffu, 0u);
    }
  // A different seed draws different inputs.
  const std::vector<Case> other = makeCases(8);
  const auto it = std::find_if(other.begin(), other.end(),
                               [](const Case &c) { return c.name == "rms_norm"; });
  ASSERT_NE(it, other.end());
  EXPECT_NE(it->input("x").f32, caseNamed("rms_norm").input("x").f32);
}

TEST(KernelCheck, PrepareWritesFilesThatReadBackExactly) {
  const std::string dir = tempDir();
  const uint64_t bytes = writeCases(dir, cases(), 7, {{"tool", "test"}});
  // They travel to the GPU machine inside scripts/gpu_check.sh's bundle, which must stay under
  // the device tool's 64 MiB carry limit together with the runtime and the plans.
  EXPECT_LT(bytes, 52u * 1000 * 1000) << "kernel-check files should stay modest";
  std::vector<Case> back = readCases(dir);
  ASSERT_EQ(back.size(), cases().size());
  for (size_t i = 0; i < back.size(); ++i) {
    const Case &a = cases()[i], &b = back[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.mode, b.mode);
    EXPECT_EQ(a.params, b.params) << a.name;
    ASSERT_EQ(a.inputs.size(), b.inputs.size());
    for (size_t t = 0; t < a.inputs.size(); ++t) {
      EXPECT_EQ(a.inputs[t].shape, b.inputs[t].shape);
      EXPECT_EQ(a.inputs[t].f32, b.inputs[t].f32);
      EXPECT_EQ(a.inputs[t].i32, b.inputs[t].i32);
    }
    ASSERT_EQ(a.outputs.size(), b.outputs.size());
    for (size_t t = 0; t < a.outputs.size(); ++t)
      EXPECT_EQ(a.outputs[t].f64, b.outputs[t].f64) << a.name << "." << a.outputs[t].name;
  }
  // The references are the CPU backend in double of exactly the stored fp32 inputs.
  for (const char *name : {"layer_norm_bwd", "inner_loop_bwd.f96", "lm_head_xent", "fused_elementwise.chain"}) {
    const auto it = std::find_if(back.begin(), back.end(),
                                 [&](const Case &x) { return x.name == name; });
    ASSERT_NE(it, back.end()) << name;
    const Case &c = *it;
    CpuOutputs<double> again = evalOnCpu<double>(c);
    for (size_t t = 0; t < c.outputs.size(); ++t)
      EXPECT_EQ(again.values[t], c.outputs[t].f64) << name;
  }
  // A flipped byte is caught; a foreign non-empty directory is never overwritten.
  const fs::path file = fs::path(dir) / "cases" / "001-rms_norm.bin";
  ASSERT_TRUE(fs::exists(file));
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  try {
    readCases(dir);
    ADD_FAILURE() << "a corrupt case file was read";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  const std::string foreign = tempDir();
  std::ofstream(fs::path(foreign) / "notes.txt") << "keep me\n";
  EXPECT_THROW(writeCases(foreign, cases(), 7, {}), std::runtime_error);
  EXPECT_TRUE(fs::exists(fs::path(foreign) / "notes.txt"));
  EXPECT_THROW(readCases(foreign), std::runtime_error);
  // Writing again over a kernel-check directory replaces it.
  EXPECT_NO_THROW(writeCases(dir, {cases()[0]}, 7, {}));
  EXPECT_EQ(readCases(dir).size(), 1u);
  fs::remove_all(dir);
  fs::remove_all(foreign);
}

// The comparison on real results: the CPU backend in fp32 passes every case at its tolerance
// (fp32 1e-5), bit for bit the same twice. Prints the worst case of each kind.
TEST(KernelCheck, CpuFloatResultsPass) {
  CpuFloatDevice cpu;
  std::vector<CaseResult> results;
  for (const Case &c : cases()) {
    results.push_back(checkCase(c, cpu, 2));
    const CaseResult &r = results.back();
    EXPECT_EQ(r.status, Status::pass) << tableLine(r);
    EXPECT_TRUE(r.deterministic) << c.name;
    EXPECT_LT(r.worstError, 1e-6) << tableLine(r) << " (fp32 rounding alone should be ~1e-7)";
  }
  const Summary s = summarize(results);
  EXPECT_EQ(s.fail, 0);
  EXPECT_EQ(s.skip, 0);
  EXPECT_EQ(s.pass, int(cases().size()));
  std::cout << summaryLine(s) << "\n";
  EXPECT_NE(summaryLine(s).find("ALL PASS"), std::string::npos);
}

TEST(KernelCheck, PerturbedOutputsFail) {
  for (const char *name : {"rms_norm", "inner_loop_bwd.f64", "softmax_xent_bwd", "unary.exp"}) {
    const Case &c = caseNamed(name);
    std::vector<std::vector<float>> out = cpuResults(c);
    ASSERT_EQ(judge(c, out, &out).status, Status::pass) << name;
    // Every value of the last output off by 1e-4 relative: an error of 1e-4 > 1e-5.
    std::vector<std::vector<float>> bad = out;
    for (float &v : bad.back())
      v *= 1.0f + 1e-4f;
    CaseResult r = judge(c, bad, &bad);
    EXPECT_EQ(r.status, Status::fail) << name;
    EXPECT_EQ(r.worstOutput, c.outputs.back().name) << name;
    EXPECT_NEAR(r.worstError, 1e-4, 2e-5) << name;
    EXPECT_NE(tableLine(r).find("FAIL"), std::string::npos);
    // One value far off fails too; a 1e-7 relative change of everything does not.
    bad = out;
    bad[0][bad[0].size() / 2] += 1.0f;
    EXPECT_EQ(judge(c, bad, &bad).status, Status::fail) << name;
    bad = out;
    for (float &v : bad[0])
      v *= 1.0f + 1e-7f;
    EXPECT_EQ(judge(c, bad, &bad).status, Status::pass) << name;
  }
}

TEST(KernelCheck, NaNInfAndWrongSizesFail) {
  const Case &c = caseNamed("layer_norm_bwd");
  const std::vector<std::vector<float>> out = cpuResults(c);
  for (float poison : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()}) {
    std::vector<std::vector<float>> bad = out;
    bad[1][3] = poison; // dw
    CaseResult r = judge(c, bad, &bad);
    EXPECT_EQ(r.status, Status::fail);
    EXPECT_EQ(r.worstOutput, "dw");
    EXPECT_TRUE(std::isinf(r.worstError));
    EXPECT_EQ(r.outputs[1].nonFinite, 1);
    EXPECT_NE(r.note.find("NaN/Inf"), std::string::npos) << r.note;
  }
  // A whole output of NaN (a kernel that wrote nothing into the NaN-filled buffer).
  std::vector<std::vector<float>> bad = out;
  std::fill(bad[2].begin(), bad[2].end(), std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(judge(c, bad, &bad).status, Status::fail);
  // Too few values, too few outputs.
  bad = out;
  bad[0].pop_back();
  EXPECT_EQ(judge(c, bad, nullptr).status, Status::fail);
  bad = out;
  bad.pop_back();
  EXPECT_EQ(judge(c, bad, nullptr).status, Status::fail);
}

TEST(KernelCheck, RunsThatDifferInOneBitFail) {
  const Case &c = caseNamed("causal_conv_bwd");
  const std::vector<std::vector<float>> out = cpuResults(c);
  std::vector<std::vector<float>> again = out;
  again[1][5] = std::nextafter(again[1][5], 1e30f); // within tolerance, but not bitwise
  CaseResult r = judge(c, out, &again);
  EXPECT_EQ(r.status, Status::fail);
  EXPECT_FALSE(r.deterministic);
  EXPECT_FALSE(r.outputs[1].bitwise);
  EXPECT_TRUE(r.outputs[0].bitwise);
  EXPECT_LT(r.worstError, 1e-5);
  EXPECT_NE(r.note.find("differ"), std::string::npos) << r.note;
  EXPECT_NE(tableLine(r).find(" NO "), std::string::npos) << tableLine(r);
  EXPECT_FALSE(summarize({r}).deterministic);
}

TEST(KernelCheck, ToleranceFollowsTheMode) {
  EXPECT_EQ(tolerance(Mode::fp32), 1e-5);
  EXPECT_EQ(tolerance(Mode::bf16), 1e-2);
  // The same 1e-3 relative error: fails as fp32, passes as bf16.
  for (const char *name : {"matmul.fp32.plain", "matmul.bf16.plain"}) {
    const Case &c = caseNamed(name);
    std::vector<std::vector<float>> out = cpuResults(c);
    for (float &v : out[0])
      v *= 1.0f + 1e-3f;
    CaseResult r = judge(c, out, &out);
    EXPECT_EQ(r.status, c.mode == Mode::bf16 ? Status::pass : Status::fail) << name;
    EXPECT_NEAR(r.worstError, 1e-3, 1e-4);
  }
}

TEST(KernelCheck, ZeroReferenceIsComparedAbsolutely) {
  Case c;
  c.name = "fill.zero";
  c.kind = "fill";
  Tensor ref;
  ref.name = "y";
  ref.dtype = DType::f64;
  ref.shape = {4};
  ref.f64.assign(4, 0.0);
  c.outputs.push_back(ref);
  CaseResult r = judge(c, {{0, 0, 0, 0}}, nullptr);
  EXPECT_EQ(r.status, Status::pass);
  EXPECT_TRUE(r.outputs[0].absolute);
  r = judge(c, {{0, 3e-6f, 0, 4e-6f}}, nullptr); // absolute 5e-6
  EXPECT_EQ(r.status, Status::pass);
  EXPECT_NEAR(r.worstError, 5e-6, 1e-9);
  EXPECT_EQ(judge(c, {{0, 0, 2e-5f, 0}}, nullptr).status, Status::fail);
}

// A device without a launcher for a kind (as the CUDA side for matmul until Matmul.h is wired):
// skipped, counted, never passed; a run error fails the case.
class PartialDevice : public CpuFloatDevice {
public:
  std::string unsupported(const Case &c) const override {
    return c.kind == "matmul" ? "no matmul here" : "";
  }
  std::string run(const Case &c, std::vector<std::vector<float>> &out) override {
    if (c.kind == "tril")
      return "launch failed: an injected error";
    return CpuFloatDevice::run(c, out);
  }
};

TEST(KernelCheck, UnsupportedKindsAreSkippedAndRunErrorsFail) {
  PartialDevice device;
  std::vector<CaseResult> results;
  int matmuls = 0, trils = 0;
  for (const Case &c : cases()) {
    results.push_back(checkCase(c, device, 2));
    if (c.kind == "matmul") {
      ++matmuls;
      EXPECT_EQ(results.back().status, Status::skip);
      EXPECT_NE(tableLine(results.back()).find("skip"), std::string::npos);
    } else if (c.kind == "tril") {
      ++trils;
      EXPECT_EQ(results.back().status, Status::fail);
      EXPECT_NE(results.back().note.find("injected"), std::string::npos);
    }
  }
  const Summary s = summarize(results);
  EXPECT_EQ(s.skip, matmuls);
  EXPECT_EQ(s.fail, trils);
  EXPECT_EQ(s.pass, int(cases().size()) - matmuls - trils);
  EXPECT_NE(summaryLine(s).find("FAILED"), std::string::npos);
  const auto j = toJson(results, s);
  EXPECT_EQ(j["summary"]["skip"].get<int>(), matmuls);
  EXPECT_EQ(j["cases"].size(), cases().size());
}

// --- the command line ---------------------------------------------------------------------------
struct CliResult {
  int exitCode = -1;
  std::string out, err;
};

CliResult ttt_run(const std::string &args, const std::string &dir) {
  const std::string cmd = std::string("'") + TTT_RUN_EXE + "' " + args + " >'" + dir +
                          "/stdout' 2>'" + dir + "/stderr'";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  auto slurp = [](const std::string &path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  r.out = slurp(dir + "/stdout");
  r.err = slurp(dir + "/stderr");
  return r;
}

TEST(KernelCheckCli, PrepareThenCheckOnTheCpu) {
  const std::string tmp = tempDir(), dir = tmp + "/cases";
  CliResult r = ttt_run("kernel-check prepare '" + dir + "' --seed 3", tmp);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/index.json"));
  EXPECT_NE(r.out.find("inner_loop_bwd.f96"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kernel-check prepare: " + std::to_string(cases().size()) + " cases (seed 3)"),
            std::string::npos)
      << r.out;

  // The checker's own path end to end, with the CPU backend as the device.
  r = ttt_run("kernel-check check '" + dir + "' --device cpu --filter norm --json '" + tmp +
                  "/report.json'",
              tmp);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("rms_norm_bwd"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("softmax_xent"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ALL PASS"), std::string::npos) << r.out;
  std::ifstream report(tmp + "/report.json");
  const nlohmann::json j = nlohmann::json::parse(report);
  EXPECT_EQ(j["summary"]["fail"].get<int>(), 0);
  // rms_norm, layer_norm and their backwards, and four more shapes of the backwards
  EXPECT_EQ(j["cases"].size(), 8u);

  // The default device is the GPU: said clearly when this build has none (exit 2), or when it
  // has CUDA but no GPU is visible (exit 1).
  r = ttt_run("kernel-check check '" + dir + "'", tmp);
  if (!TTT_TEST_HAVE_CUDA) {
    EXPECT_EQ(r.exitCode, 2) << r.err;
    EXPECT_NE(r.err.find("no CUDA backend"), std::string::npos) << r.err;
  } else if (r.exitCode != 0) {
    EXPECT_TRUE(r.err.find("no usable CUDA GPU") != std::string::npos ||
                r.out.find("FAILED") != std::string::npos)
        << r.out << r.err;
  }
  // A directory without cases, and a usage error.
  r = ttt_run("kernel-check check '" + tmp + "/missing' --device cpu", tmp);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("index.json"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
  r = ttt_run("kernel-check", tmp);
  EXPECT_EQ(r.exitCode, 2);
  fs::remove_all(tmp);
}
} // namespace
