// Streams the lines of a gzip file (multi-member, as written by any gzip) without loading it whole.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace ttt::data {

class GzipLineReader {
public:
  /// Throws std::runtime_error when the file cannot be opened.
  explicit GzipLineReader(const std::string &path);
  ~GzipLineReader();
  GzipLineReader(const GzipLineReader &) = delete;
  GzipLineReader &operator=(const GzipLineReader &) = delete;

  /// Next line without its '\n'; false at the end. A final line cut off by a truncated or corrupt
  /// stream is not returned (it would be a silently shortened document).
  bool next(std::string &line);
  /// Complete lines, each ending with '\n', replacing `block`: at least `minBytes` of them unless
  /// the file ends first (one line may be longer). `lines` receives how many; false when none
  /// is left. Same lines and line numbers as next(); a final line without '\n' gets one here.
  bool nextBlock(std::string &block, size_t minBytes, uint64_t &lines);
  uint64_t lineNumber() const { return lineNo_; } // of the line last returned, 1-based
  bool truncated() const { return truncated_; }
  bool corrupt() const { return corrupt_; }
  const std::string &error() const { return error_; }
  uint64_t compressedBytes() const { return compressedBytes_; }

private:
  bool fill(); // inflates more into buf_; false when nothing more can come
  struct Stream;
  std::unique_ptr<Stream> z_;
  std::FILE *file_ = nullptr;
  std::vector<unsigned char> in_;
  std::string buf_;
  size_t pos_ = 0;
  bool done_ = false, truncated_ = false, corrupt_ = false, sawData_ = false;
  std::string error_;
  uint64_t lineNo_ = 0, compressedBytes_ = 0;
};

} // namespace ttt::data
