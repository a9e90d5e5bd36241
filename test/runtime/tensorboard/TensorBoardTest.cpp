// EventWriter and its CRC32C: the RFC 3720 vectors, the record framing read back byte by byte,
// and the error messages.
#include "runtime/tensorboard/TensorBoard.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <vector>

#include <unistd.h>

namespace tb = ttt::tensorboard;
namespace fs = std::filesystem;

namespace {
uint32_t crcOf(const std::vector<uint8_t> &bytes) { return tb::crc32c(bytes.data(), bytes.size()); }

uint64_t readLe(const std::string &blob, size_t at, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= static_cast<uint64_t>(static_cast<uint8_t>(blob[at + i])) << (8 * i);
  return value;
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A fresh empty directory per test, removed afterwards.
class TempDir {
public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("ttt-tb-test-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }

private:
  fs::path path_;
};

// Splits a file into its payloads, checking both masked CRCs of every record.
std::vector<std::string> readRecords(const std::string &blob) {
  std::vector<std::string> payloads;
  size_t at = 0;
  while (at < blob.size()) {
    EXPECT_LE(at + 12, blob.size()) << "torn header at byte " << at;
    uint64_t length = readLe(blob, at, 8);
    EXPECT_EQ(readLe(blob, at + 8, 4),
              tb::maskedCrc32c(reinterpret_cast<const uint8_t *>(blob.data() + at), 8))
        << "length CRC of the record at byte " << at;
    EXPECT_LE(at + 12 + length + 4, blob.size()) << "torn payload at byte " << at;
    std::string payload = blob.substr(at + 12, length);
    EXPECT_EQ(readLe(blob, at + 12 + length, 4),
              tb::maskedCrc32c(reinterpret_cast<const uint8_t *>(payload.data()), payload.size()))
        << "data CRC of the record at byte " << at;
    payloads.push_back(payload);
    at += 12 + length + 4;
  }
  return payloads;
}
} // namespace

TEST(Crc32c, Rfc3720Vectors) {
  std::vector<uint8_t> bytes(32, 0x00);
  EXPECT_EQ(crcOf(bytes), 0x8A9136AAu) << "32 bytes of zeros";
  bytes.assign(32, 0xFF);
  EXPECT_EQ(crcOf(bytes), 0x62A8AB43u) << "32 bytes of 0xFF";
  std::iota(bytes.begin(), bytes.end(), 0);
  EXPECT_EQ(crcOf(bytes), 0x46DD794Eu) << "0..31 ascending";
  for (int i = 0; i < 32; ++i)
    bytes[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(crcOf(bytes), 0x113FDB5Cu) << "31..0 descending";
}

TEST(Crc32c, CheckValueAndEmpty) {
  const std::string digits = "123456789"; // the CRC catalogue's check value for CRC-32C
  EXPECT_EQ(tb::crc32c(reinterpret_cast<const uint8_t *>(digits.data()), digits.size()),
            0xE3069283u);
  EXPECT_EQ(tb::crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, MaskIsRotateRight15PlusConstant) {
  std::vector<uint8_t> zeros(32, 0x00);
  uint32_t crc = 0x8A9136AAu;
  EXPECT_EQ(tb::maskedCrc32c(zeros.data(), zeros.size()),
            static_cast<uint32_t>(((crc >> 15) | (crc << 17)) + 0xa282ead8u));
}

TEST(Record, Framing) {
  std::string out;
  tb::appendRecord(out, "abc");
  ASSERT_EQ(out.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(readLe(out, 0, 8), 3u);
  EXPECT_EQ(out.substr(12, 3), "abc");
  EXPECT_EQ(readRecords(out), std::vector<std::string>{"abc"});
}

TEST(EventWriter, FlushedStepsAreInTheFileWhileItIsOpen) {
  TempDir dir;
  std::string error;
  auto writer = tb::EventWriter::open(dir.str() + "/nested/run", error);
  ASSERT_TRUE(writer) << error;
  EXPECT_EQ(error, "");
  std::string name = fs::path(writer->path()).filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;

  // The version record is written at open, before any step.
  EXPECT_EQ(readRecords(readFile(writer->path())).size(), 1u);
  writer->scalar("train/loss", 1, 2.5, 1700000000.0);
  writer->scalar("train/lr", 1, 0.0, 1700000000.0);
  EXPECT_EQ(readRecords(readFile(writer->path())).size(), 1u) << "scalars are buffered";
  EXPECT_EQ(writer->flush(), "");
  std::vector<std::string> records = readRecords(readFile(writer->path()));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_NE(records[0].find("brain.Event:2"), std::string::npos);
  EXPECT_NE(records[1].find("train/loss"), std::string::npos);
  EXPECT_NE(records[2].find("train/lr"), std::string::npos);
}

TEST(EventWriter, DestructorFlushes) {
  TempDir dir;
  std::string error, path;
  {
    auto writer = tb::EventWriter::open(dir.str(), error);
    ASSERT_TRUE(writer) << error;
    path = writer->path();
    writer->scalar("loss", 7, 1.0, 1700000000.0);
  }
  EXPECT_EQ(readRecords(readFile(path)).size(), 2u);
}

TEST(EventWriter, TwoWritersInOneSecondGetTwoFiles) {
  TempDir dir;
  std::string error;
  auto first = tb::EventWriter::open(dir.str(), error);
  ASSERT_TRUE(first) << error;
  auto second = tb::EventWriter::open(dir.str(), error);
  ASSERT_TRUE(second) << error;
  EXPECT_NE(first->path(), second->path());
}

TEST(EventWriter, LogDirThatIsAFileIsAOneLineError) {
  TempDir dir;
  std::string file = dir.str() + "/plain-file";
  std::ofstream(file) << "x";
  std::string error;
  EXPECT_FALSE(tb::EventWriter::open(file, error));
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_FALSE(tb::EventWriter::open("", error));
  EXPECT_NE(error, "");
}
