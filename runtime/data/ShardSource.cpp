#include "runtime/data/ShardSource.h"

#include "runtime/data/HttpFetcher.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <unistd.h>

namespace fs = std::filesystem;

namespace ttt::data {
namespace {

std::string env(const char *name) {
  const char *v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string shardName(const char *split, int i, int n) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "c4-%s.%05d-of-%05d.json.gz", split, i, n);
  return buf;
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Hugging Face conventions: HF_DATASETS_CACHE, else HF_HOME/datasets, else ~/.cache/huggingface.
std::string defaultCacheDir() {
  if (!env("HF_DATASETS_CACHE").empty())
    return env("HF_DATASETS_CACHE") + "/ttt-c4";
  std::string hfHome = env("HF_HOME");
  if (hfHome.empty())
    hfHome = (env("XDG_CACHE_HOME").empty() ? env("HOME") + "/.cache" : env("XDG_CACHE_HOME")) +
             "/huggingface";
  return hfHome + "/datasets/ttt-c4";
}

} // namespace

std::string ShardSource::sampleDir() {
  if (!env("TTT_SAMPLE_DIR").empty())
    return env("TTT_SAMPLE_DIR");
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = 0;
    fs::path installed = fs::path(exe).parent_path().parent_path() / "share/ttt/sample/en";
    if (fs::is_directory(installed))
      return installed.string();
  }
  return TTT_SOURCE_SAMPLE_DIR; // set by runtime/data/CMakeLists.txt
}

ShardSource::ShardSource(const SourceOptions &opts) : opts_(opts) {
  if (env("HF_DATASETS_OFFLINE") == "1" || env("HF_HUB_OFFLINE") == "1")
    opts_.offline = true;
  std::string base;
  if (opts_.data == "c4") {
    base = opts_.baseUrl.empty()
               ? "https://huggingface.co/datasets/allenai/c4/resolve/" + opts_.revision + "/en"
               : opts_.baseUrl;
    opts_.trainShards = 1024;
    opts_.validationShards = 8;
  } else if (opts_.data.rfind("http://", 0) == 0 || opts_.data.rfind("https://", 0) == 0) {
    base = opts_.data;
  }
  if (!base.empty()) {
    while (endsWith(base, "/"))
      base.pop_back();
    std::string cache = opts_.cacheDir.empty() ? defaultCacheDir() : opts_.cacheDir;
    // one cache folder per base URL, so mirrors and revisions never mix
    std::string key = base.substr(base.find("://") + 3);
    std::replace_if(key.begin(), key.end(), [](char c) { return !std::isalnum((unsigned char)c) && c != '.' && c != '-'; }, '_');
    fs::path dir = fs::path(cache) / key;
    auto add = [&](std::vector<ShardRef> &into, const char *split, int n, int limit) {
      for (int i = 0; i < n && (limit <= 0 || i < limit); ++i) {
        std::string name = shardName(split, i, n);
        into.push_back({name, (dir / name).string(), base + "/" + name});
      }
    };
    add(train_, "train", opts_.trainShards, opts_.maxTrainShards);
    add(validation_, "validation", opts_.validationShards, 0);
    id_ = base;
    return;
  }
  std::string dir = opts_.data == "sample" ? sampleDir() : opts_.data;
  if (!fs::is_directory(dir))
    throw std::runtime_error("data source '" + opts_.data + "': no such folder " + dir +
                             " (expected sample, c4, a folder of *.json.gz shards, or a URL)");
  std::vector<std::string> names;
  for (const auto &e : fs::directory_iterator(dir))
    if (e.is_regular_file() && endsWith(e.path().filename().string(), ".json.gz"))
      names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const auto &n : names) {
    ShardRef ref{n, (fs::path(dir) / n).string(), ""};
    if (n.find("validation") != std::string::npos)
      validation_.push_back(ref);
    else if (opts_.maxTrainShards <= 0 || static_cast<int>(train_.size()) < opts_.maxTrainShards)
      train_.push_back(ref);
  }
  if (train_.empty())
    throw std::runtime_error("data source '" + opts_.data + "': no train shards (*.json.gz) in " + dir);
  id_ = opts_.data == "sample" ? "sample" : fs::weakly_canonical(dir).string();
}

ShardSource::~ShardSource() {
  // background downloads must finish before the object they refer to goes away
  for (auto &[name, f] : downloads_)
    if (f.valid())
      f.wait();
}

void ShardSource::prefetch(const ShardRef &shard) {
  if (shard.url.empty())
    return;
  std::lock_guard<std::mutex> lock(mu_);
  if (downloads_.count(shard.name))
    return;
  HttpOptions http;
  http.caBundle = opts_.caBundle;
  http.retries = opts_.retries;
  http.retryBaseSeconds = opts_.retryBaseSeconds;
  http.offline = opts_.offline;
  http.token = env("HF_TOKEN");
  downloads_[shard.name] =
      std::async(std::launch::async, [shard, http] { downloadFile(shard.url, shard.localPath, http); })
          .share();
}

std::string ShardSource::localFile(const ShardRef &shard) {
  if (shard.url.empty()) {
    if (!fs::is_regular_file(shard.localPath))
      throw std::runtime_error("shard " + shard.localPath + " is missing");
    return shard.localPath;
  }
  prefetch(shard);
  std::shared_future<void> f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    f = downloads_[shard.name];
  }
  f.get(); // rethrows the download's error
  return shard.localPath;
}

} // namespace ttt::data
