// Training and validation batches from a ShardSource: packing into windows, the global seeded
// order, rank slices, the state-passing row streams, and the resumable global cursor.
#pragma once

#include "runtime/data/DataReport.h"
#include "runtime/data/ShardSource.h"
#include "runtime/data/ShardTokenizer.h"
#include "runtime/data/ThreadPool.h"
#include "runtime/data/Tokenizer.h"

#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

namespace ttt::data {

enum class BatchMode {
  Shuffled,   // windows of seqLen+1 tokens in one seeded global order (spec 4.4)
  RowStreams, // row r of step s+1 continues where row r of step s stopped (state passing)
};

struct LoaderOptions {
  int seqLen = 2048;
  int globalBatch = 256; // rows per optimizer step over all ranks; a multiple of worldSize
  int rank = 0;
  int worldSize = 1;
  uint64_t seed = 0;
  /// Shards mixed into one stream and one window permutation. 0: all shards (the whole data set
  /// is one stream, as in the reference; right for the sample). For C4, 1-4 bounds the memory
  /// (one C4 shard is ~170M tokens, 340 MB).
  int shardsPerGroup = 0;
  int threads = 0; // tokenizer workers; 0: hardware concurrency
  BatchMode mode = BatchMode::Shuffled;
};

/// One rank's rows of one global batch, in host buffers ready to be copied to pinned memory.
struct Batch {
  int rows = 0, seqLen = 0;
  std::vector<int32_t> inputs;  // rows x seqLen
  std::vector<int32_t> targets; // rows x seqLen: inputs shifted by one
  std::vector<float> mask;      // rows x seqLen: 0 where the target is BOS (spec 4.5), else 1
  uint64_t step = 0;            // global step this batch belongs to
  bool streamsReset = false;    // RowStreams: the rows start new streams (new group or epoch)
};
uint64_t batchDigest(const Batch &b); // FNV-1a over inputs, targets and mask

/// A position in the global order, the same on every rank; independent of the number of ranks.
struct Cursor {
  uint64_t epoch = 0;
  uint64_t group = 0;  // index of the shard group within the epoch's seeded shard order
  uint64_t offset = 0; // Shuffled: next window in the group's order; RowStreams: next step in it
  uint64_t step = 0;   // global batches delivered so far
  std::string fingerprint; // source, shards, seq len, seed, grouping, mode: checked on resume
  std::string serialize() const;                    // a small JSON object
  static Cursor deserialize(const std::string &s); // throws std::runtime_error when malformed
  bool operator==(const Cursor &o) const {
    return epoch == o.epoch && group == o.group && offset == o.offset && step == o.step &&
           fingerprint == o.fingerprint;
  }
};

/// Deterministic shuffling that does not depend on the standard library's implementation.
std::vector<uint32_t> seededPermutation(uint32_t n, uint64_t seed);

class TrainLoader {
public:
  TrainLoader(ShardSource &source, const Tokenizer &tok, const LoaderOptions &opts,
              DataReport &report);
  ~TrainLoader();

  /// Fills `b` with this rank's rows of the next global batch. Epochs wrap automatically.
  void next(Batch &b);
  Cursor cursor() const;
  /// Continues from `c`; throws when it was made for other data or settings.
  void seek(const Cursor &c);
  std::string fingerprint() const;

  uint64_t tokensTokenized() const { return tokensTokenized_; }
  uint64_t documentsTokenized() const { return documentsTokenized_; }

private:
  struct Group {
    std::vector<uint16_t> tokens;
    uint64_t windows = 0;        // Shuffled: floor((N-1)/T)
    std::vector<uint32_t> order; // Shuffled: the seeded window order
    uint64_t rowLength = 0;      // RowStreams: tokens per row stream
    uint64_t steps = 0;          // RowStreams: floor(rowLength/T)
  };
  uint64_t groupsPerEpoch() const;
  std::vector<size_t> groupShards(uint64_t epoch, uint64_t group) const;
  std::shared_ptr<const Group> buildGroup(uint64_t epoch, uint64_t group);
  /// Puts a freshly tokenized shard into the cache (and the counts).
  std::shared_ptr<const ShardTokens> remember(size_t index, ShardTokens &&t);
  void enterGroup(); // loads the group at the cursor (waiting for a prefetch) and starts the next
  void advanceGroup();
  void copyWindow(const uint16_t *w, Batch &b, int row) const;

  ShardSource &source_;
  const Tokenizer &tok_;
  LoaderOptions opts_;
  DataReport &report_;
  std::unique_ptr<ThreadPool> pool_;
  Cursor pos_;
  std::shared_ptr<const Group> group_;
  std::pair<uint64_t, uint64_t> prefetchKey_{~0ull, ~0ull};
  std::shared_future<std::shared_ptr<const Group>> prefetched_;
  std::mutex cacheMu_;
  std::map<size_t, std::shared_ptr<const ShardTokens>> shardCache_;
  std::vector<size_t> cacheAge_;
  uint64_t tokensTokenized_ = 0, documentsTokenized_ = 0;
};

/// Validation batches: all validation shards as one stream, consecutive windows, never shuffled.
class ValidationLoader {
public:
  ValidationLoader(ShardSource &source, const Tokenizer &tok, const LoaderOptions &opts,
                   DataReport &report);
  ~ValidationLoader();
  /// False once fewer than one full global batch of windows is left (the tail is dropped).
  bool next(Batch &b);
  void reset();

private:
  bool ensure(uint64_t tokens); // makes buf_ hold at least `tokens` tokens from pos_
  ShardSource &source_;
  const Tokenizer &tok_;
  LoaderOptions opts_;
  DataReport &report_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<uint16_t> buf_;
  size_t pos_ = 0;
  size_t nextShard_ = 0;
  uint64_t step_ = 0;
};

} // namespace ttt::data
