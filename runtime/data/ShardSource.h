// Where shards come from: the embedded sample, a local folder, or HTTPS (the C4 hub layout or any
// base URL), resolved to local files (downloads land in a cache and may run ahead in background).
#pragma once

#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ttt::data {

struct SourceOptions {
  std::string data = "sample"; // "sample", "c4", a folder, or an http(s):// base URL
  std::string revision = "main"; // for c4: a branch or commit of allenai/c4
  std::string baseUrl;           // overrides the hub URL for c4 (a mirror)
  std::string cacheDir;          // default: HF_DATASETS_CACHE, HF_HOME/datasets, ~/.cache/...
  std::string caBundle;          // PEM file for TLS verification; default: the system's
  int trainShards = 1024;        // for URL sources: how many c4-train.*-of-N files exist
  int validationShards = 8;
  int maxTrainShards = 0;        // use only the first N train shards (0: all)
  bool offline = false;          // also set by HF_DATASETS_OFFLINE=1 or HF_HUB_OFFLINE=1
  int retries = 5;
  double retryBaseSeconds = 1.0; // backoff: base, 2*base, 4*base, ...
};

struct ShardRef {
  std::string name;      // e.g. c4-train.00003-of-01024.json.gz
  std::string localPath; // where it is (or will be, once downloaded)
  std::string url;       // empty for local shards
};

class ShardSource {
public:
  /// Throws std::runtime_error for an unknown source or a folder without shards.
  explicit ShardSource(const SourceOptions &opts);
  ~ShardSource();

  const std::vector<ShardRef> &train() const { return train_; }
  const std::vector<ShardRef> &validation() const { return validation_; }
  /// Identifies the data for the cursor: resuming on other data is refused.
  std::string id() const { return id_; }

  /// The local file for a shard, downloading it first when needed (blocking). Throws when it
  /// cannot be had (404, retries exhausted, offline and not cached).
  std::string localFile(const ShardRef &shard);
  /// Starts fetching in the background so that localFile() later returns at once.
  void prefetch(const ShardRef &shard);

  /// The embedded sample's folder: TTT_SAMPLE_DIR, else next to the executable, else the source tree.
  static std::string sampleDir();

private:
  SourceOptions opts_;
  std::vector<ShardRef> train_, validation_;
  std::string id_;
  std::mutex mu_;
  std::map<std::string, std::shared_future<void>> downloads_;
};

} // namespace ttt::data
