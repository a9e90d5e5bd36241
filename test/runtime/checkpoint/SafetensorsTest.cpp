// safetensors: round trips of every dtype, the exact byte layout, and one distinct error per
// malformed-file case.
#include "runtime/checkpoint/Safetensors.h"
#include "CheckpointTestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <limits>
#include <set>

namespace {
using namespace ttt::checkpoint;

class SafetensorsFileTest : public ::testing::Test {
protected:
  void SetUp() override { dir = ttt::test::makeCheckpointTempDir(); }
  void TearDown() override { ttt::test::removeCheckpointTempDir(dir); }
  std::string dir;
};

SafetensorsFile everyDtype() {
  SafetensorsFile f;
  f.tensors.push_back(
      makeTensor("f64", DType::F64, {2, 3}, std::vector<double>{1.0 / 3, -2.5, 1e300, -0.0, 7, 8}));
  f.tensors.push_back(makeTensor("f32", DType::F32, {3}, std::vector<float>{1.5f, -1e-30f, 3e38f}));
  f.tensors.push_back(
      makeTensor("bf16", DType::BF16, {2, 2}, std::vector<float>{1, -2, 0.5f, 256}));
  f.tensors.push_back(makeIntTensor("i32", DType::I32, {3}, {-7, 0, 2147483647}));
  f.tensors.push_back(
      makeIntTensor("i64", DType::I64, {2}, {-(int64_t(1) << 40), int64_t(9007199254740993)}));
  f.tensors.push_back(makeTensor("scalar", DType::F32, {}, std::vector<float>{42}));
  f.tensors.push_back(makeTensor("empty", DType::F32, {0, 5}, std::vector<float>{}));
  f.metadata = {{"format", "pt"}, {"note", "a \"quoted\" value"}};
  return f;
}

TEST_F(SafetensorsFileTest, RoundTripOfEveryDtype) {
  SafetensorsFile f = everyDtype();
  std::string path = dir + "/all.safetensors";
  ASSERT_EQ(writeSafetensors(path, f), "");
  SafetensorsFile back;
  ASSERT_EQ(readSafetensors(path, back), "");
  EXPECT_EQ(back.metadata, f.metadata);
  ASSERT_EQ(back.tensors.size(), f.tensors.size());
  for (const Tensor &want : f.tensors) {
    const Tensor *got = back.find(want.name);
    ASSERT_NE(got, nullptr) << want.name;
    EXPECT_EQ(got->dtype, want.dtype) << want.name;
    EXPECT_EQ(got->shape, want.shape) << want.name;
    EXPECT_EQ(got->data, want.data) << want.name;
  }
  const Tensor *i64 = back.find("i64");
  int64_t big;
  std::memcpy(&big, i64->data.data() + 8, 8);
  EXPECT_EQ(big, int64_t(9007199254740993)); // not representable as a double: stored exactly
  EXPECT_EQ(back.find("bf16")->at(3), 256.0);
  EXPECT_EQ(back.find("f64")->at(0), 1.0 / 3);
  EXPECT_EQ(back.find("i32")->at(2), 2147483647.0);
}

TEST_F(SafetensorsFileTest, AtomicWriteLeavesNoTempFileAndReportsBadPaths) {
  std::string path = dir + "/m.safetensors";
  ASSERT_EQ(writeSafetensors(path, everyDtype()), "");
  ASSERT_EQ(writeSafetensors(path, everyDtype()), ""); // replaces an existing file
  int entries = 0;
  DIR *d = ::opendir(dir.c_str());
  while (dirent *e = ::readdir(d))
    entries += e->d_name[0] != '.';
  ::closedir(d);
  EXPECT_EQ(entries, 1);
  std::string err = writeSafetensors(dir + "/no/such/dir/m.safetensors", everyDtype());
  EXPECT_NE(err.find("no/such/dir/m.safetensors"), std::string::npos) << err;
  SafetensorsFile back;
  err = readSafetensors(dir + "/missing.safetensors", back);
  EXPECT_NE(err.find("missing.safetensors"), std::string::npos) << err;
}

TEST(Safetensors, HandBuiltByteLayout) {
  SafetensorsFile f;
  f.tensors.push_back(makeTensor("b", DType::BF16, {1}, std::vector<float>{1.0f}));
  f.tensors.push_back(makeTensor("a", DType::F32, {2}, std::vector<float>{1.0f, 2.0f}));
  std::vector<uint8_t> bytes;
  ASSERT_EQ(encodeSafetensors(f, bytes), "");
  // Larger elements first, then by name: a (F32) at [0, 8), b (BF16) at [8, 10). Keys of each
  // entry in JSON order; padding with spaces to a multiple of 8.
  std::string json = "{\"a\":{\"data_offsets\":[0,8],\"dtype\":\"F32\",\"shape\":[2]},"
                     "\"b\":{\"data_offsets\":[8,10],\"dtype\":\"BF16\",\"shape\":[1]}}";
  ASSERT_EQ(json.size(), 109u);
  json += "   "; // 112 = 14 * 8
  std::vector<uint8_t> want = {112, 0, 0, 0, 0, 0, 0, 0};
  want.insert(want.end(), json.begin(), json.end());
  for (uint8_t x : {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0x80, 0x3f})
    want.push_back(x);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), std::string(want.begin(), want.end()));
}

TEST(Safetensors, LayoutAlignsEveryTensorToItsElementSize) {
  std::vector<uint8_t> bytes;
  SafetensorsFile f = everyDtype();
  ASSERT_EQ(encodeSafetensors(f, bytes), "");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  SafetensorsFile back;
  ASSERT_EQ(decodeSafetensors(bytes.data(), bytes.size(), "x", back), "");
  // Data-offset order: F64 and I64 first, then F32/I32 (by name), then BF16.
  std::vector<std::string> order;
  for (const Tensor &t : back.tensors)
    order.push_back(t.name);
  EXPECT_EQ(order,
            (std::vector<std::string>{"f64", "i64", "empty", "f32", "i32", "scalar", "bf16"}));
}

TEST(Safetensors, Bf16RoundsToNearestEven) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(floatToBf16(-2.0f), 0xc000);
  auto fromBits = [](uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  };
  EXPECT_EQ(floatToBf16(fromBits(0x3f808000u)), 0x3f80); // tie, even stays
  EXPECT_EQ(floatToBf16(fromBits(0x3f818000u)), 0x3f82); // tie, odd rounds up
  EXPECT_EQ(floatToBf16(fromBits(0x3f808001u)), 0x3f81); // above the tie
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(std::nanf("")))));
  EXPECT_EQ(bf16ToFloat(0x4080), 4.0f);
}

TEST(Safetensors, EncodeRejectsInconsistentTensors) {
  SafetensorsFile f;
  f.tensors.push_back(makeTensor("a", DType::F32, {2}, std::vector<float>{1, 2}));
  f.tensors.push_back(makeTensor("a", DType::F32, {2}, std::vector<float>{1, 2}));
  std::vector<uint8_t> bytes;
  EXPECT_NE(encodeSafetensors(f, bytes).find("twice"), std::string::npos);
  f.tensors.pop_back();
  f.tensors[0].shape = {3};
  EXPECT_NE(encodeSafetensors(f, bytes).find("does not match"), std::string::npos);
}

// A file from a literal header (padded with spaces) and a data buffer.
std::vector<uint8_t> fileOf(std::string header, size_t dataBytes) {
  header.append((8 - header.size() % 8) % 8, ' ');
  std::vector<uint8_t> b(8 + header.size() + dataBytes, 0);
  uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

std::string decodeError(const std::vector<uint8_t> &bytes) {
  SafetensorsFile f;
  return decodeSafetensors(bytes.data(), bytes.size(), "bad.safetensors", f);
}

TEST(Safetensors, EachMalformedFileHasItsOwnError) {
  const std::string ok = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(decodeError(fileOf(ok, 8)), "");

  std::vector<uint8_t> hugeHeader = fileOf(ok, 8);
  uint64_t huge = uint64_t(1) << 40;
  std::memcpy(hugeHeader.data(), &huge, 8);
  std::vector<uint8_t> pastEnd = fileOf(ok, 8);
  pastEnd.resize(20);

  struct Case {
    const char *what;
    std::vector<uint8_t> bytes;
    const char *expect;
    bool namesTensor;
  };
  const Case cases[] = {
      {"truncated header size", {1, 2, 3, 4, 5}, "too short", false},
      {"header size beyond the limit", hugeHeader, "exceeds the limit", false},
      {"header runs past the end", pastEnd, "runs past the end", false},
      {"not an object", fileOf("[1, 2]", 0), "not a JSON object", false},
      {"bad JSON", fileOf(R"({"w":{"dtype":"F32",)", 8), "not valid JSON", false},
      {"duplicate key",
       fileOf(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
              R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
              8),
       "twice", false},
      {"offsets out of range",
       fileOf(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 8), "out of range",
       true},
      {"end before begin", fileOf(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 8),
       "end before begin", true},
      {"overlapping",
       fileOf(R"({"u":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
              R"("w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
              12),
       "overlap tensor 'u'", true},
      {"gap", fileOf(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), "gap of 4",
       true},
      {"trailing bytes", fileOf(ok, 12), "4 trailing bytes", false},
      {"shape/byte mismatch",
       fileOf(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12 bytes",
       true},
      {"unknown dtype", fileOf(R"({"w":{"dtype":"F8","shape":[8],"data_offsets":[0,8]}})", 8),
       "unknown dtype 'F8'", true},
      {"negative extent", fileOf(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
       "non-negative", true},
      {"missing offsets", fileOf(R"({"w":{"dtype":"F32","shape":[2]}})", 8), "data_offsets must",
       true},
      {"extra field", fileOf(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8),
       "unexpected field 'x'", true},
      {"metadata not strings",
       fileOf(R"({"__metadata__":{"a":1},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
              8),
       "value of 'a' is not a string", false},
  };
  std::set<std::string> distinct;
  for (const Case &c : cases) {
    std::string err = decodeError(c.bytes);
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.what << ": " << err;
    EXPECT_EQ(err.rfind("bad.safetensors: ", 0), 0u) << c.what << ": " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << c.what << ": " << err;
    if (c.namesTensor)
      EXPECT_NE(err.find("tensor 'w'"), std::string::npos) << c.what << ": " << err;
    distinct.insert(err);
  }
  EXPECT_EQ(distinct.size(), sizeof(cases) / sizeof(cases[0]));
}

TEST(Safetensors, EmptyFileWithNoTensorsIsValid) {
  SafetensorsFile f, back;
  std::vector<uint8_t> bytes;
  ASSERT_EQ(encodeSafetensors(f, bytes), "");
  EXPECT_EQ(bytes.size(), 16u); // "{}" padded to 8
  EXPECT_EQ(decodeSafetensors(bytes.data(), bytes.size(), "e", back), "");
  EXPECT_TRUE(back.tensors.empty());
}
} // namespace
