// Helpers for the data tests: temporary folders, gzip shards written on the fly, the tokenizer.
#pragma once

#include "runtime/data/Tokenizer.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace ttt::data::testing {

inline std::string tempDir(const std::string &name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("ttt-data-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline void writeGzip(const std::string &path, const std::string &content) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!content.empty())
    ASSERT_EQ(gzwrite(f, content.data(), static_cast<unsigned>(content.size())),
              static_cast<int>(content.size()));
  gzclose(f);
}

/// A C4 line with deterministic English-looking text of about `words` words.
inline std::string c4Line(uint64_t seed, int words) {
  static const char *kWords[] = {"the", "model", "learns", "at", "test", "time", "and", "a",
                                 "hidden", "state", "is", "itself", "linear", "layer", "of",
                                 "tokens", "Mr.", "Darcy", "walked", "into", "\\u00e9t\\u00e9",
                                 "quote\\\"d", "line\\nbreak", "2049", "windows"};
  std::mt19937_64 rng(seed);
  std::string text;
  for (int i = 0; i < words; ++i)
    text += std::string(i ? " " : "") + kWords[rng() % (sizeof(kWords) / sizeof(*kWords))];
  return "{\"text\":\"" + text + "\",\"timestamp\":\"2019-04-25T12:00:00Z\",\"url\":\"https://x/" +
         std::to_string(seed) + "\"}\n";
}

/// Writes `shards` train shards (and one validation shard) of `docs` documents each.
inline std::string syntheticC4(const std::string &name, int shards, int docs, int words = 30) {
  std::string dir = tempDir(name);
  for (int s = 0; s <= shards; ++s) {
    std::string content;
    for (int d = 0; d < docs; ++d)
      content += c4Line(s * 100000 + d, words + (d * 7) % 23);
    char file[96];
    if (s < shards)
      std::snprintf(file, sizeof(file), "c4-train.%05d-of-%05d.json.gz", s, shards);
    else
      std::snprintf(file, sizeof(file), "c4-validation.00000-of-00001.json.gz");
    writeGzip(dir + "/" + file, content);
  }
  return dir;
}

/// The tokenizer, loaded once; tests that need it skip (loudly) when it was never fetched.
inline const Tokenizer *tokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    try {
      return Tokenizer::load(std::getenv("TTT_TOKENIZER") ? std::getenv("TTT_TOKENIZER") : "");
    } catch (const std::exception &) {
      return std::unique_ptr<Tokenizer>();
    }
  }();
  return tok.get();
}

#define TTT_REQUIRE_TOKENIZER()                                                                    \
  if (!::ttt::data::testing::tokenizer())                                                          \
  GTEST_FAIL() << "tokenizer.model not found: run scripts/setup.sh (or scripts/fetch_tokenizer.sh)"

} // namespace ttt::data::testing
