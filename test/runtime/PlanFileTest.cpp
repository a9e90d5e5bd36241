// The plan container (runtime/plan/PlanFile): round trip, the atomic writer, and one distinct
// one-line error per kind of bad file.
#include "TestPlans.h"

#include "runtime/plan/PlanFile.h"
#include "ttt/schema/plan_generated.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace {
using namespace ttt::test;
namespace fb = ttt::plan;

// Loads `bytes` and expects failure; returns the message.
std::string loadError(const std::vector<uint8_t> &bytes, const std::string &name = "train.bin") {
  fb::PlanFile file;
  std::string error;
  EXPECT_FALSE(file.loadBytes(bytes, name, error)) << "expected " << name << " to be rejected";
  EXPECT_EQ(file.plan(), nullptr);
  EXPECT_EQ(error.find('\n'), std::string::npos) << "not one line: " << error;
  EXPECT_EQ(error.rfind(name + ": ", 0), 0u) << "does not start with the file name: " << error;
  return error;
}

void putLE16(std::vector<uint8_t> &bytes, size_t at, uint16_t v) {
  bytes[at] = uint8_t(v);
  bytes[at + 1] = uint8_t(v >> 8);
}

std::vector<std::string> listDir(const std::string &dir) {
  std::vector<std::string> names;
  if (DIR *d = ::opendir(dir.c_str())) {
    while (dirent *e = ::readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
        names.push_back(e->d_name);
    ::closedir(d);
  }
  return names;
}

TEST(PlanChecksum, MatchesFnv1a64ReferenceValues) {
  EXPECT_EQ(fb::fnv1a64(nullptr, 0), 0xcbf29ce484222325ull);
  const uint8_t a[] = {'a'};
  EXPECT_EQ(fb::fnv1a64(a, 1), 0xaf63dc4c8601ec8cull);
  const uint8_t foobar[] = {'f', 'o', 'o', 'b', 'a', 'r'};
  EXPECT_EQ(fb::fnv1a64(foobar, 6), 0x85944171f73967e8ull);
}

TEST(PlanFile, EncodesTheDocumentedHeader) {
  std::vector<uint8_t> payload = toyPlanPayload();
  std::vector<uint8_t> file = fb::encodePlanFile(payload.data(), payload.size());
  ASSERT_EQ(file.size(), fb::kHeaderSize + payload.size());
  EXPECT_EQ(std::string(file.begin(), file.begin() + 4), "TTTP");
  EXPECT_EQ(file[4] | file[5] << 8, fb::kFormatMajor);
  EXPECT_EQ(file[6] | file[7] << 8, fb::kFormatMinor);
  uint64_t size = 0, sum = 0;
  for (int i = 7; i >= 0; --i) {
    size = size << 8 | file[8 + i];
    sum = sum << 8 | file[16 + i];
  }
  EXPECT_EQ(size, payload.size());
  EXPECT_EQ(sum, fb::fnv1a64(payload.data(), payload.size()));
  for (size_t i = 24; i < 32; ++i)
    EXPECT_EQ(file[i], 0) << "reserved header byte " << i;
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), file.begin() + fb::kHeaderSize));
}

TEST(PlanFile, RoundTripsEveryTable) {
  std::vector<uint8_t> bytes = toyPlanFile();
  fb::PlanFile file;
  std::string error;
  ASSERT_TRUE(file.loadBytes(bytes, "toy.bin", error)) << error;
  EXPECT_EQ(file.major(), fb::kFormatMajor);
  EXPECT_EQ(file.minor(), fb::kFormatMinor);
  EXPECT_EQ(file.fileSize(), bytes.size());
  const fb::Plan *plan = file.plan();
  ASSERT_NE(plan, nullptr);
  ASSERT_NE(plan->provenance(), nullptr);
  EXPECT_EQ(plan->provenance()->model_name()->str(), "ttt_toy");
  ASSERT_EQ(plan->provenance()->flags()->size(), 4u);
  EXPECT_EQ(plan->provenance()->flags()->Get(1)->str(), "--seq-len=64");
  EXPECT_EQ(plan->config()->vocab_size(), 32000);
  EXPECT_EQ(plan->config()->num_layers(), 2);
  EXPECT_DOUBLE_EQ(plan->config()->rms_norm_eps(), 1e-6);
  EXPECT_TRUE(plan->config()->tie_word_embeddings());
  EXPECT_EQ(plan->config()->bos_token_id(), 1);  // schema default
  EXPECT_EQ(plan->recipe()->optimizer()->str(), "adamw");
  EXPECT_DOUBLE_EQ(plan->recipe()->lr(), 3e-3);
  EXPECT_EQ(plan->recipe()->seed(), 42);
  EXPECT_EQ(plan->compiled()->per_device_batch(), 2);
  EXPECT_EQ(plan->compiled()->precision(), fb::Precision::fp32);
  EXPECT_EQ(plan->compiled()->target(), fb::Target::cpu);
  ASSERT_EQ(plan->parameters()->size(), 10u);
  const fb::Parameter *w1 = plan->parameters()->Get(1);
  EXPECT_EQ(w1->name()->str(), "layers.0.ttt.W1");
  EXPECT_EQ(w1->shape()->size(), 3u);
  EXPECT_EQ(w1->shape()->Get(2), 16);
  EXPECT_EQ(w1->init(), fb::InitKind::normal);
  EXPECT_EQ(w1->hf_name()->str(), "model.layers.0.seq_modeling_block.W1");
  EXPECT_EQ(w1->kind()->str(), "ttt_linear");
  EXPECT_EQ(w1->layer(), 0);
  EXPECT_EQ(plan->parameters()->Get(0)->layer(), -1);
}

TEST(PlanFile, LoadsFromDisk) {
  std::string dir = makeTempDir();
  std::string path = dir + "/train.bin";
  writeBytes(path, toyPlanFile());
  fb::PlanFile file;
  std::string error;
  EXPECT_TRUE(file.load(path, error)) << error;
  ASSERT_NE(file.plan(), nullptr);
  EXPECT_EQ(file.plan()->parameters()->size(), 10u);
  removeTree(dir);
}

TEST(PlanFileErrors, WrongMagic) {
  std::vector<uint8_t> bytes = toyPlanFile();
  bytes[0] = 'G', bytes[1] = 'G', bytes[2] = 'U', bytes[3] = 'F';
  std::string error = loadError(bytes);
  EXPECT_NE(error.find("not a ttt plan"), std::string::npos) << error;
  EXPECT_NE(error.find("'GGUF'"), std::string::npos) << error;
  EXPECT_NE(error.find("tttc"), std::string::npos) << "should say how to get a plan: " << error;
}

TEST(PlanFileErrors, EmptyFileIsNotAPlan) {
  std::string error = loadError({});
  EXPECT_NE(error.find("empty"), std::string::npos) << error;
}

TEST(PlanFileErrors, TruncatedPayload) {
  std::vector<uint8_t> bytes = toyPlanFile();
  size_t full = bytes.size() - fb::kHeaderSize;
  bytes.resize(bytes.size() - 100);
  std::string error = loadError(bytes);
  EXPECT_NE(error.find("truncated plan"), std::string::npos) << error;
  EXPECT_NE(error.find(std::to_string(full)), std::string::npos) << "should give the expected size: " << error;
}

TEST(PlanFileErrors, TruncatedHeader) {
  std::vector<uint8_t> bytes = toyPlanFile();
  bytes.resize(20);
  std::string error = loadError(bytes);
  EXPECT_NE(error.find("truncated plan"), std::string::npos) << error;
  EXPECT_NE(error.find("header"), std::string::npos) << error;
}

TEST(PlanFileErrors, TrailingBytesAreNotCalledTruncation) {
  std::vector<uint8_t> bytes = toyPlanFile();
  bytes.insert(bytes.end(), 7, 0);
  std::string error = loadError(bytes);
  EXPECT_EQ(error.find("truncated"), std::string::npos) << error;
  EXPECT_NE(error.find("7 bytes"), std::string::npos) << error;
}

TEST(PlanFileErrors, NewerMajorVersion) {
  std::vector<uint8_t> bytes = toyPlanFile();
  putLE16(bytes, 4, fb::kFormatMajor + 1);
  putLE16(bytes, 6, 0);
  std::string error = loadError(bytes);
  std::string expected = "plan format " + std::to_string(fb::kFormatMajor + 1) + ".0 is newer than this runtime (" +
                         std::to_string(fb::kFormatMajor) + "." + std::to_string(fb::kFormatMinor) + ")";
  EXPECT_NE(error.find(expected), std::string::npos) << error;
}

TEST(PlanFileErrors, NewerMinorVersionIsRejectedToo) {
  std::vector<uint8_t> bytes = toyPlanFile();
  putLE16(bytes, 6, fb::kFormatMinor + 1);
  std::string error = loadError(bytes);
  EXPECT_NE(error.find("is newer than this runtime"), std::string::npos) << error;
}

TEST(PlanFileErrors, OlderMajorVersion) {
  std::vector<uint8_t> bytes = toyPlanFile();
  putLE16(bytes, 4, fb::kFormatMajor - 1);
  std::string error = loadError(bytes);
  EXPECT_NE(error.find("is older than this runtime"), std::string::npos) << error;
}

TEST(PlanFileErrors, FlippedPayloadByteFailsTheChecksum) {
  std::vector<uint8_t> clean = toyPlanFile();
  // Every payload position, one bit each: FNV-1a catches any single-byte change.
  for (size_t at = fb::kHeaderSize; at < clean.size(); at += 37) {
    std::vector<uint8_t> bytes = clean;
    bytes[at] ^= 0x10;
    std::string error = loadError(bytes);
    EXPECT_NE(error.find("corrupt plan: payload checksum"), std::string::npos) << "byte " << at << ": " << error;
  }
}

TEST(PlanFileErrors, FourBadFilesGiveFourDistinctMessages) {
  std::vector<uint8_t> magic = toyPlanFile(), truncated = toyPlanFile(), newer = toyPlanFile(),
                       flipped = toyPlanFile();
  magic[0] = 'X';
  truncated.pop_back();
  putLE16(newer, 4, fb::kFormatMajor + 1);
  flipped[fb::kHeaderSize + 40] ^= 1;
  std::set<std::string> kinds;
  for (const std::string &error :
       {loadError(magic), loadError(truncated), loadError(newer), loadError(flipped)}) {
    // The part before the first ':' after the name says what is wrong.
    std::string what = error.substr(0, error.find(':', std::string("train.bin: ").size()));
    kinds.insert(what);
  }
  EXPECT_EQ(kinds.size(), 4u);
}

TEST(PlanFileErrors, MissingFile) {
  std::string dir = makeTempDir();
  std::string path = dir + "/no-such-plan.bin";
  fb::PlanFile file;
  std::string error;
  EXPECT_FALSE(file.load(path, error));
  EXPECT_EQ(error.rfind(path + ": cannot open plan", 0), 0u) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
  EXPECT_NE(error.find("tttc"), std::string::npos) << error;
  removeTree(dir);
}

TEST(PlanFileErrors, DirectoryIsNotAPlan) {
  std::string dir = makeTempDir();
  fb::PlanFile file;
  std::string error;
  EXPECT_FALSE(file.load(dir, error));
  EXPECT_NE(error.find("is a directory"), std::string::npos) << error;
  removeTree(dir);
}

TEST(PlanFileErrors, PayloadThatPassesTheChecksumButNotTheVerifier) {
  // A valid checksum over bytes that are no flatbuffer: what a broken writer would produce.
  std::vector<uint8_t> junk(64);
  for (size_t i = 0; i < junk.size(); ++i)
    junk[i] = uint8_t(0xA5 ^ (i * 29));
  std::string error = loadError(fb::encodePlanFile(junk.data(), junk.size()));
  EXPECT_NE(error.find("invalid plan: the payload fails the schema verifier"), std::string::npos) << error;

  // A real Plan flatbuffer whose root offset points past the end.
  std::vector<uint8_t> payload = toyPlanPayload();
  payload[0] = 0xF0, payload[1] = 0xFF, payload[2] = 0xFF, payload[3] = 0x7F;
  error = loadError(fb::encodePlanFile(payload.data(), payload.size()));
  EXPECT_NE(error.find("fails the schema verifier"), std::string::npos) << error;
}

TEST(PlanFileErrors, PayloadWithoutTheFileIdentifierFailsTheVerifier) {
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::CreatePlanDirect(b));  // no "TTTP" identifier in the payload
  std::string error = loadError(fb::encodePlanFile(b.GetBufferPointer(), b.GetSize()));
  EXPECT_NE(error.find("fails the schema verifier"), std::string::npos) << error;
}

TEST(PlanWriter, WritesAtomicallyAndLeavesNoTempFiles) {
  std::string dir = makeTempDir();
  std::string path = dir + "/train.bin";
  std::vector<uint8_t> payload = toyPlanPayload();
  ASSERT_EQ(fb::writePlanFile(path, payload.data(), payload.size()), "");
  EXPECT_EQ(readBytes(path), fb::encodePlanFile(payload.data(), payload.size()));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0644u & ~mask);

  // Overwriting replaces the whole file (a longer old file leaves no tail behind).
  std::vector<uint8_t> big(5000, 7);
  writeBytes(path, big);
  std::vector<uint8_t> small = bareParameterPayload();
  ASSERT_EQ(fb::writePlanFile(path, small.data(), small.size()), "");
  EXPECT_EQ(readBytes(path), fb::encodePlanFile(small.data(), small.size()));
  fb::PlanFile file;
  std::string error;
  EXPECT_TRUE(file.load(path, error)) << error;

  EXPECT_EQ(listDir(dir), std::vector<std::string>{"train.bin"}) << "temp files left behind";
  removeTree(dir);
}

TEST(PlanWriter, ReportsAnUnwritableDestination) {
  std::string dir = makeTempDir();
  std::string path = dir + "/missing-subdir/train.bin";
  std::vector<uint8_t> payload = toyPlanPayload();
  std::string error = fb::writePlanFile(path, payload.data(), payload.size());
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
  EXPECT_TRUE(listDir(dir).empty());
  removeTree(dir);
}

TEST(PlanWriter, FailedWriteKeepsThePreviousPlan) {
  std::string dir = makeTempDir();
  std::string path = dir + "/train.bin";
  std::vector<uint8_t> payload = toyPlanPayload();
  ASSERT_EQ(fb::writePlanFile(path, payload.data(), payload.size()), "");
  std::vector<uint8_t> before = readBytes(path);
  // Block the temp file with a directory of the same name (works as root too, unlike chmod): the
  // write must fail and the old plan survive untouched.
  std::string blocker = path + ".tmp." + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(blocker.c_str(), 0755), 0);
  std::vector<uint8_t> other = bareParameterPayload();
  std::string error = fb::writePlanFile(path, other.data(), other.size());
  ::rmdir(blocker.c_str());
  EXPECT_NE(error, "");
  EXPECT_EQ(readBytes(path), before);
  EXPECT_EQ(listDir(dir), std::vector<std::string>{"train.bin"});
  removeTree(dir);
}
} // namespace
