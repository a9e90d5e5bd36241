// Counts and reports bad input data (each problem once, with shard and line) instead of crashing.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace ttt::data {

enum class IssueKind {
  TruncatedGzip, // the file ends inside the compressed stream: the partial last line is dropped
  CorruptGzip,   // inflate reported a data error: the rest of the shard is skipped
  NotJson,       // the line does not parse as a JSON object
  NoText,        // a JSON object without a string "text"
  InvalidUtf8,   // the line is not valid UTF-8: skipped (never passed to the tokenizer)
  EmptyDocument, // "text" is empty: contributes BOS only (spec 4.4)
  EmptyShard,    // a shard without any document
  Download,      // a download attempt failed and was retried
};
const char *issueName(IssueKind kind);

struct DataIssue {
  IssueKind kind;
  std::string shard;
  uint64_t line = 0; // 1-based; 0 when the issue concerns the whole shard
  std::string detail;
};

class DataReport {
public:
  /// `log` receives one line per new issue (up to `maxLoggedPerKind` per kind); null: silent.
  explicit DataReport(std::ostream *log = nullptr, int maxLoggedPerKind = 20)
      : log_(log), maxLogged_(maxLoggedPerKind) {}

  /// Thread-safe. The same (kind, shard, line) is recorded once, even when a shard is read again
  /// in a later epoch.
  void add(IssueKind kind, const std::string &shard, uint64_t line, const std::string &detail);
  uint64_t count(IssueKind kind) const;
  uint64_t total() const;
  std::vector<DataIssue> issues() const;
  std::string summary() const; // "" when nothing went wrong

private:
  mutable std::mutex mu_;
  std::ostream *log_;
  int maxLogged_;
  std::set<std::tuple<int, std::string, uint64_t>> seen_;
  std::map<IssueKind, uint64_t> counts_;
  std::vector<DataIssue> issues_;
};

} // namespace ttt::data
