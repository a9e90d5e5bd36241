#include "runtime/data/DataReport.h"

namespace ttt::data {

const char *issueName(IssueKind kind) {
  switch (kind) {
  case IssueKind::TruncatedGzip: return "truncated gzip";
  case IssueKind::CorruptGzip: return "corrupt gzip";
  case IssueKind::NotJson: return "not JSON";
  case IssueKind::NoText: return "no \"text\" string";
  case IssueKind::InvalidUtf8: return "invalid UTF-8";
  case IssueKind::EmptyDocument: return "empty document";
  case IssueKind::EmptyShard: return "empty shard";
  case IssueKind::Download: return "download retry";
  }
  return "?";
}

void DataReport::add(IssueKind kind, const std::string &shard, uint64_t line,
                     const std::string &detail) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!seen_.insert({static_cast<int>(kind), shard, line}).second)
    return;
  uint64_t n = ++counts_[kind];
  issues_.push_back({kind, shard, line, detail});
  if (!log_)
    return;
  if (n <= static_cast<uint64_t>(maxLogged_)) {
    *log_ << "ttt data: " << shard;
    if (line)
      *log_ << ":" << line;
    *log_ << ": " << issueName(kind) << (detail.empty() ? "" : ": ") << detail << "\n";
  }
  if (n == static_cast<uint64_t>(maxLogged_))
    *log_ << "ttt data: further '" << issueName(kind) << "' issues are counted, not printed\n";
}

uint64_t DataReport::count(IssueKind kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(kind);
  return it == counts_.end() ? 0 : it->second;
}

uint64_t DataReport::total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return issues_.size();
}

std::vector<DataIssue> DataReport::issues() const {
  std::lock_guard<std::mutex> lock(mu_);
  return issues_;
}

std::string DataReport::summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string s;
  for (const auto &[kind, n] : counts_)
    s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + issueName(kind);
  return s;
}

} // namespace ttt::data
