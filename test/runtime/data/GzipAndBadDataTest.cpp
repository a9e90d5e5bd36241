#include "DataTestUtil.h"

#include "runtime/data/GzipLineReader.h"
#include "runtime/data/ShardSource.h"
#include "runtime/data/ShardTokenizer.h"

#include <fstream>

using namespace ttt::data;
using namespace ttt::data::testing;

namespace {
std::vector<std::string> readAll(GzipLineReader &r) {
  std::vector<std::string> lines;
  std::string l;
  while (r.next(l))
    lines.push_back(l);
  return lines;
}
std::string slurp(const std::string &p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
} // namespace

TEST(GzipLineReader, ReadsMultiMemberFilesAndALastLineWithoutNewline) {
  std::string dir = tempDir("gz");
  writeGzip(dir + "/a.gz", "one\ntwo\n");
  writeGzip(dir + "/b.gz", "three\nfour");
  std::ofstream(dir + "/ab.gz", std::ios::binary) << slurp(dir + "/a.gz") << slurp(dir + "/b.gz");
  GzipLineReader r(dir + "/ab.gz");
  EXPECT_EQ(readAll(r), (std::vector<std::string>{"one", "two", "three", "four"}));
  EXPECT_FALSE(r.truncated());
  EXPECT_FALSE(r.corrupt());
  EXPECT_EQ(r.lineNumber(), 4u);
}

TEST(GzipLineReader, TruncatedFileDropsThePartialLine) {
  std::string dir = tempDir("gztrunc");
  std::string content;
  for (int i = 0; i < 20000; ++i)
    content += "line number " + std::to_string(i * 7919 % 100003) + "\n";
  writeGzip(dir + "/full.gz", content);
  std::string bytes = slurp(dir + "/full.gz");
  std::ofstream(dir + "/cut.gz", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  GzipLineReader r(dir + "/cut.gz");
  auto lines = readAll(r);
  EXPECT_TRUE(r.truncated());
  ASSERT_GT(lines.size(), 100u);
  ASSERT_LT(lines.size(), 20000u);
  for (size_t i = 0; i < lines.size(); ++i) // every line returned is complete and correct
    ASSERT_EQ(lines[i], "line number " + std::to_string(i * 7919 % 100003)) << i;
}

TEST(GzipLineReader, CorruptDataIsReported) {
  std::string dir = tempDir("gzbad");
  std::string content;
  for (int i = 0; i < 5000; ++i)
    content += "some text " + std::to_string(i) + "\n";
  writeGzip(dir + "/full.gz", content);
  std::string bytes = slurp(dir + "/full.gz");
  for (size_t i = bytes.size() / 3; i < bytes.size() / 3 + 64; ++i)
    bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);
  std::ofstream(dir + "/bad.gz", std::ios::binary) << bytes;
  GzipLineReader r(dir + "/bad.gz");
  readAll(r);
  EXPECT_TRUE(r.corrupt() || r.truncated()) << "corruption went unnoticed";
  EXPECT_FALSE(r.error().empty());
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(isValidUtf8("plain"));
  EXPECT_TRUE(isValidUtf8("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(isValidUtf8("\xff"));
  EXPECT_FALSE(isValidUtf8("\xc3"));             // cut short
  EXPECT_FALSE(isValidUtf8("\xc0\xaf"));         // overlong
  EXPECT_FALSE(isValidUtf8("\xed\xa0\x80"));     // a surrogate
  EXPECT_FALSE(isValidUtf8("\xf4\x90\x80\x80")); // above U+10FFFF
}

TEST(BadData, EachProblemIsCountedOnceWithItsLine) {
  TTT_REQUIRE_TOKENIZER();
  std::string dir = tempDir("bad");
  std::string content = "{\"text\":\"Hello world!\"}\n"                 // 1 good
                        "this is not json\n"                           // 2
                        "{\"url\":\"no text here\"}\n"                 // 3
                        "{\"text\":\"bad \xff byte\"}\n"               // 4
                        "{\"text\":\"lone surrogate \\ud800\"}\n"      // 5 nlohmann: a parse error
                        "{\"text\":\"\"}\n"                            // 6 empty: BOS only
                        "{\"text\":42}\n"                              // 7
                        "[\"an array\"]\n"                             // 8
                        "{\"text\":\"Hello world!\",\"timestamp\":1}"; // 9 good, no final newline
  writeGzip(dir + "/s.json.gz", content);
  std::ostringstream log;
  DataReport report(&log);
  ThreadPool pool(2);
  for (int pass = 0; pass < 2; ++pass) { // a second read (next epoch) reports nothing new
    ShardTokens t = tokenizeShard(dir + "/s.json.gz", "s.json.gz", *tokenizer(), pool, report);
    EXPECT_EQ(t.documents, 3u);
    EXPECT_EQ(t.tokens, (std::vector<uint16_t>{1, 15043, 3186, 29991, 2, 1, 1, 15043, 3186, 29991, 2}));
  }
  EXPECT_EQ(report.count(IssueKind::NotJson), 3u);
  EXPECT_EQ(report.count(IssueKind::NoText), 2u);
  EXPECT_EQ(report.count(IssueKind::InvalidUtf8), 1u);
  EXPECT_EQ(report.count(IssueKind::EmptyDocument), 1u);
  EXPECT_EQ(report.total(), 7u);
  std::string text = log.str();
  for (const char *where : {"s.json.gz:2: not JSON", "s.json.gz:3: no \"text\"",
                            "s.json.gz:4: invalid UTF-8", "s.json.gz:5: not JSON",
                            "s.json.gz:6: empty document", "s.json.gz:7: no \"text\"",
                            "s.json.gz:8: not JSON"})
    EXPECT_NE(text.find(where), std::string::npos) << where << "\nin:\n" << text;
}

TEST(BadData, TruncatedShardKeepsCompleteDocuments) {
  TTT_REQUIRE_TOKENIZER();
  std::string dir = tempDir("badtrunc");
  std::string content;
  for (int i = 0; i < 3000; ++i)
    content += c4Line(i, 40);
  writeGzip(dir + "/full.json.gz", content);
  std::string bytes = slurp(dir + "/full.json.gz");
  std::ofstream(dir + "/cut.json.gz", std::ios::binary) << bytes.substr(0, bytes.size() * 2 / 3);
  DataReport report;
  ThreadPool pool(2);
  ShardTokens t = tokenizeShard(dir + "/cut.json.gz", "cut", *tokenizer(), pool, report);
  EXPECT_EQ(report.count(IssueKind::TruncatedGzip), 1u);
  EXPECT_EQ(report.count(IssueKind::NotJson), 0u) << "a cut-off line reached the JSON parser";
  EXPECT_GT(t.documents, 1000u);
  EXPECT_LT(t.documents, 3000u);
  EXPECT_EQ(t.tokens.back(), Tokenizer::kEos); // ends on a whole document
}

TEST(BadData, EmptyAndMissingShards) {
  TTT_REQUIRE_TOKENIZER();
  std::string dir = tempDir("empty");
  std::ofstream(dir + "/zero.json.gz").close(); // 0 bytes
  writeGzip(dir + "/nolines.json.gz", "");
  DataReport report;
  ThreadPool pool(1);
  EXPECT_EQ(tokenizeShard(dir + "/zero.json.gz", "zero", *tokenizer(), pool, report).tokens.size(), 0u);
  EXPECT_EQ(tokenizeShard(dir + "/nolines.json.gz", "nolines", *tokenizer(), pool, report).tokens.size(), 0u);
  EXPECT_EQ(report.count(IssueKind::EmptyShard), 2u);
  EXPECT_THROW(tokenizeShard(dir + "/missing.json.gz", "missing", *tokenizer(), pool, report),
               std::runtime_error);
  SourceOptions o;
  o.data = dir + "/no-such-folder";
  EXPECT_THROW(ShardSource{o}, std::runtime_error);
}
