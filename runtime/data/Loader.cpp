#include "runtime/data/Loader.h"

#include "runtime/data/ShardTokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace ttt::data {
namespace {

uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t mixSeed(uint64_t seed, uint64_t a, uint64_t b, uint64_t salt) {
  uint64_t s = seed ^ (salt * 0xD1B54A32D192ED03ull);
  uint64_t h = splitmix64(s);
  s = h ^ a;
  h = splitmix64(s);
  s = h ^ b;
  return splitmix64(s);
}

int workerCount(int requested) {
  if (requested > 0)
    return requested;
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 2;
}

void checkOptions(const LoaderOptions &o) {
  if (o.seqLen < 1 || o.globalBatch < 1 || o.worldSize < 1 || o.rank < 0 || o.rank >= o.worldSize)
    throw std::runtime_error("data loader: bad seq_len/batch/rank/world size");
  if (o.globalBatch % o.worldSize != 0)
    throw std::runtime_error("data loader: global batch " + std::to_string(o.globalBatch) +
                             " is not a multiple of the " + std::to_string(o.worldSize) + " ranks");
}

void resizeBatch(Batch &b, int rows, int seqLen) {
  b.rows = rows;
  b.seqLen = seqLen;
  size_t n = static_cast<size_t>(rows) * seqLen;
  b.inputs.resize(n);
  b.targets.resize(n);
  b.mask.resize(n);
}

void fillRow(const uint16_t *w, int seqLen, Batch &b, int row) {
  size_t base = static_cast<size_t>(row) * seqLen;
  for (int t = 0; t < seqLen; ++t) {
    b.inputs[base + t] = w[t];
    b.targets[base + t] = w[t + 1];
    b.mask[base + t] = w[t + 1] == Tokenizer::kBos ? 0.0f : 1.0f;
  }
}

} // namespace

uint64_t batchDigest(const Batch &b) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto eat = [&h](const void *p, size_t n) {
    const auto *c = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; ++i)
      h = (h ^ c[i]) * 0x100000001b3ull;
  };
  eat(b.inputs.data(), b.inputs.size() * sizeof(int32_t));
  eat(b.targets.data(), b.targets.size() * sizeof(int32_t));
  eat(b.mask.data(), b.mask.size() * sizeof(float));
  return h;
}

std::vector<uint32_t> seededPermutation(uint32_t n, uint64_t seed) {
  std::vector<uint32_t> p(n);
  for (uint32_t i = 0; i < n; ++i)
    p[i] = i;
  uint64_t state = seed;
  for (uint32_t i = n; i > 1; --i) {
    // unbiased draw in [0, i): reject the top sliver of the 64-bit range
    uint64_t limit = ~0ull - (~0ull % i);
    uint64_t x;
    do
      x = splitmix64(state);
    while (x >= limit);
    std::swap(p[i - 1], p[x % i]);
  }
  return p;
}

std::string Cursor::serialize() const {
  nlohmann::json j = {{"version", 1}, {"epoch", epoch},   {"group", group},
                      {"offset", offset}, {"step", step}, {"fingerprint", fingerprint}};
  return j.dump();
}

Cursor Cursor::deserialize(const std::string &s) {
  nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1)
    throw std::runtime_error("data cursor: not a version 1 cursor: " + s.substr(0, 200));
  try {
    Cursor c;
    c.epoch = j.at("epoch").get<uint64_t>();
    c.group = j.at("group").get<uint64_t>();
    c.offset = j.at("offset").get<uint64_t>();
    c.step = j.at("step").get<uint64_t>();
    c.fingerprint = j.at("fingerprint").get<std::string>();
    return c;
  } catch (const nlohmann::json::exception &e) {
    throw std::runtime_error(std::string("data cursor: ") + e.what());
  }
}

// ---------------------------------------------------------------------------------------------
TrainLoader::TrainLoader(ShardSource &source, const Tokenizer &tok, const LoaderOptions &opts,
                         DataReport &report)
    : source_(source), tok_(tok), opts_(opts), report_(report) {
  checkOptions(opts_);
  size_t n = source_.train().size();
  if (opts_.shardsPerGroup <= 0 || static_cast<size_t>(opts_.shardsPerGroup) > n)
    opts_.shardsPerGroup = static_cast<int>(n);
  pool_ = std::make_unique<ThreadPool>(workerCount(opts_.threads));
  pos_.fingerprint = fingerprint();
}

TrainLoader::~TrainLoader() {
  if (prefetched_.valid())
    prefetched_.wait();
}

std::string TrainLoader::fingerprint() const {
  std::string f = "source=" + source_.id() + ";shards=" + std::to_string(source_.train().size()) +
                  ";seq=" + std::to_string(opts_.seqLen) + ";seed=" + std::to_string(opts_.seed) +
                  ";group=" + std::to_string(opts_.shardsPerGroup);
  if (opts_.mode == BatchMode::RowStreams)
    f += ";mode=rows;batch=" + std::to_string(opts_.globalBatch);
  else
    f += ";mode=shuffled";
  return f;
}

uint64_t TrainLoader::groupsPerEpoch() const {
  size_t n = source_.train().size(), s = opts_.shardsPerGroup;
  return (n + s - 1) / s;
}

std::vector<size_t> TrainLoader::groupShards(uint64_t epoch, uint64_t group) const {
  size_t n = source_.train().size();
  // shards in a seeded order per epoch; each group takes the next shardsPerGroup of them
  auto order = seededPermutation(static_cast<uint32_t>(n), mixSeed(opts_.seed, epoch, 0, 1));
  std::vector<size_t> out;
  for (size_t i = group * opts_.shardsPerGroup; i < std::min(n, (group + 1) * opts_.shardsPerGroup); ++i)
    out.push_back(order[i]);
  return out;
}

std::shared_ptr<const ShardTokens> TrainLoader::remember(size_t index, ShardTokens &&t) {
  auto tokens = std::make_shared<const ShardTokens>(std::move(t));
  std::lock_guard<std::mutex> lock(cacheMu_);
  tokensTokenized_ += tokens->tokens.size();
  documentsTokenized_ += tokens->documents;
  // keep the shards of about two groups; the oldest go first
  shardCache_[index] = tokens;
  cacheAge_.push_back(index);
  while (shardCache_.size() > static_cast<size_t>(2 * opts_.shardsPerGroup) && !cacheAge_.empty()) {
    shardCache_.erase(cacheAge_.front());
    cacheAge_.erase(cacheAge_.begin());
  }
  return tokens;
}

std::shared_ptr<const TrainLoader::Group> TrainLoader::buildGroup(uint64_t epoch, uint64_t group) {
  auto shards = groupShards(epoch, group);
  for (size_t s : shards) // downloads run ahead while earlier shards are tokenized
    source_.prefetch(source_.train()[s]);
  // shards already tokenized come from the cache; the others go through one pipeline together
  // (the reader runs ahead from shard to shard while the workers tokenize)
  std::vector<std::shared_ptr<const ShardTokens>> parts(shards.size());
  std::vector<size_t> missing;
  {
    std::lock_guard<std::mutex> lock(cacheMu_);
    for (size_t i = 0; i < shards.size(); ++i) {
      auto it = shardCache_.find(shards[i]);
      if (it != shardCache_.end())
        parts[i] = it->second;
      else
        missing.push_back(i);
    }
  }
  if (!missing.empty()) {
    std::vector<ShardInput> inputs;
    for (size_t i : missing) {
      const ShardRef *ref = &source_.train()[shards[i]];
      inputs.push_back({ref->name, [this, ref] { return source_.localFile(*ref); }});
    }
    auto tokenized = tokenizeShards(inputs, tok_, *pool_, report_);
    for (size_t k = 0; k < missing.size(); ++k)
      parts[missing[k]] = remember(shards[missing[k]], std::move(tokenized[k]));
  }
  auto g = std::make_shared<Group>();
  size_t total = 0;
  for (const auto &t : parts)
    total += t->tokens.size();
  g->tokens.reserve(total);
  for (const auto &t : parts)
    g->tokens.insert(g->tokens.end(), t->tokens.begin(), t->tokens.end());
  const uint64_t n = g->tokens.size(), T = opts_.seqLen;
  if (opts_.mode == BatchMode::Shuffled) {
    g->windows = n > 0 ? (n - 1) / T : 0;
    if (g->windows > 0xFFFFFFFFull)
      throw std::runtime_error("data loader: too many windows in one group; lower shardsPerGroup");
    g->order = seededPermutation(static_cast<uint32_t>(g->windows), mixSeed(opts_.seed, epoch, group, 2));
  } else {
    g->rowLength = n > 0 ? (n - 1) / opts_.globalBatch : 0;
    g->steps = g->rowLength / T;
  }
  return g;
}

void TrainLoader::enterGroup() {
  auto key = std::make_pair(pos_.epoch, pos_.group);
  if (prefetched_.valid() && prefetchKey_ == key)
    group_ = prefetched_.get();
  else
    group_ = buildGroup(pos_.epoch, pos_.group);
  // start the group after this one in the background
  uint64_t ne = pos_.epoch, ng = pos_.group + 1;
  if (ng >= groupsPerEpoch()) {
    ne++;
    ng = 0;
  }
  if (prefetched_.valid())
    prefetched_.wait();
  prefetchKey_ = {ne, ng};
  prefetched_ = std::async(std::launch::async, [this, ne, ng] { return buildGroup(ne, ng); }).share();
}

void TrainLoader::advanceGroup() {
  pos_.offset = 0;
  if (++pos_.group >= groupsPerEpoch()) {
    pos_.group = 0;
    pos_.epoch++;
  }
  enterGroup();
}

Cursor TrainLoader::cursor() const { return pos_; }

void TrainLoader::seek(const Cursor &c) {
  if (c.fingerprint != fingerprint())
    throw std::runtime_error("data cursor was made for other data or settings:\n  cursor: " +
                             c.fingerprint + "\n  now:    " + fingerprint());
  pos_ = c;
  group_.reset();
}

void TrainLoader::next(Batch &b) {
  const int B = opts_.globalBatch, W = opts_.worldSize;
  const int lo = opts_.rank * (B / W), hi = lo + B / W;
  resizeBatch(b, hi - lo, opts_.seqLen);
  if (!group_)
    enterGroup();
  uint64_t emptyGroups = 0;
  auto skipExhausted = [&](uint64_t available) {
    while (pos_.offset >= available) {
      if (++emptyGroups > groupsPerEpoch() + 1)
        throw std::runtime_error("data loader: no group has enough tokens for one " +
                                 std::string(opts_.mode == BatchMode::Shuffled ? "window" : "step") +
                                 " of seq_len " + std::to_string(opts_.seqLen));
      advanceGroup();
      available = opts_.mode == BatchMode::Shuffled ? group_->windows : group_->steps;
    }
  };
  b.step = pos_.step;
  if (opts_.mode == BatchMode::Shuffled) {
    b.streamsReset = false;
    for (int j = 0; j < B; ++j) {
      skipExhausted(group_->windows);
      emptyGroups = 0;
      if (j >= lo && j < hi) {
        uint64_t w = group_->order[pos_.offset];
        fillRow(group_->tokens.data() + w * opts_.seqLen, opts_.seqLen, b, j - lo);
      }
      pos_.offset++;
    }
  } else {
    skipExhausted(group_->steps);
    b.streamsReset = pos_.offset == 0;
    for (int j = lo; j < hi; ++j)
      fillRow(group_->tokens.data() + j * group_->rowLength + pos_.offset * opts_.seqLen,
              opts_.seqLen, b, j - lo);
    pos_.offset++;
  }
  pos_.step++;
}

// ---------------------------------------------------------------------------------------------
ValidationLoader::ValidationLoader(ShardSource &source, const Tokenizer &tok,
                                   const LoaderOptions &opts, DataReport &report)
    : source_(source), tok_(tok), opts_(opts), report_(report) {
  checkOptions(opts_);
  if (source_.validation().empty())
    throw std::runtime_error("data source " + source_.id() + " has no validation shards");
  pool_ = std::make_unique<ThreadPool>(workerCount(opts_.threads));
}

ValidationLoader::~ValidationLoader() = default;

void ValidationLoader::reset() {
  buf_.clear();
  pos_ = 0;
  nextShard_ = 0;
  step_ = 0;
}

bool ValidationLoader::ensure(uint64_t tokens) {
  while (buf_.size() - pos_ < tokens) {
    if (nextShard_ >= source_.validation().size())
      return false;
    buf_.erase(buf_.begin(), buf_.begin() + pos_);
    pos_ = 0;
    const ShardRef &ref = source_.validation()[nextShard_++];
    if (nextShard_ < source_.validation().size())
      source_.prefetch(source_.validation()[nextShard_]);
    ShardTokens t = tokenizeShard(source_.localFile(ref), ref.name, tok_, *pool_, report_);
    buf_.insert(buf_.end(), t.tokens.begin(), t.tokens.end());
  }
  return true;
}

bool ValidationLoader::next(Batch &b) {
  const int B = opts_.globalBatch, W = opts_.worldSize, T = opts_.seqLen;
  const int lo = opts_.rank * (B / W), hi = lo + B / W;
  // a global batch needs B consecutive windows: B*T + 1 tokens
  if (!ensure(static_cast<uint64_t>(B) * T + 1))
    return false;
  resizeBatch(b, hi - lo, T);
  for (int j = lo; j < hi; ++j)
    fillRow(buf_.data() + pos_ + static_cast<size_t>(j) * T, T, b, j - lo);
  pos_ += static_cast<size_t>(B) * T;
  b.step = step_++;
  b.streamsReset = false;
  return true;
}

} // namespace ttt::data
