// One shard -> one token stream: gunzip, JSON lines, tokenization on worker threads, in file order.
#pragma once

#include "runtime/data/DataReport.h"
#include "runtime/data/ThreadPool.h"
#include "runtime/data/Tokenizer.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ttt::data {

struct ShardTokens {
  std::vector<uint16_t> tokens; // BOS text EOS, document after document
  uint64_t documents = 0;
  uint64_t textBytes = 0; // UTF-8 bytes of the document texts
};

/// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool isValidUtf8(std::string_view s);

/// Extracts the "text" of one C4 line. Returns false (and reports) for a line to skip.
bool documentText(std::string_view line, const std::string &shard, uint64_t lineNo,
                  DataReport &report, std::string &text);

/// One shard to read: the name issues are reported under and its local file. `path` is called
/// only when the reader reaches the shard (it may block on a download that runs ahead).
struct ShardInput {
  std::string name;
  std::function<std::string()> path;
};

/// Reads and tokenizes shards as one pipeline: the calling thread gunzips and cuts the text into
/// blocks of whole lines (kBlockBytes), the pool's workers check UTF-8, parse JSON and tokenize
/// each block, and the results are put back together in file order. The reader runs ahead across
/// shard boundaries (no barrier between shards). Result i belongs to shards[i]. `maxTextBytes`
/// (0: no limit) stops reading after that many uncompressed bytes; for measurements: the shard
/// being read is then incomplete and the rest are empty, and no issue is reported for them.
/// Problems in the data are reported, never thrown; a file that cannot be opened throws (after
/// the blocks in flight have finished).
std::vector<ShardTokens> tokenizeShards(const std::vector<ShardInput> &shards, const Tokenizer &tok,
                                        ThreadPool &pool, DataReport &report,
                                        uint64_t maxTextBytes = 0);
/// The work unit: ~30 C4 documents (2 KB average), ~15K tokens, ~30 ms of one core.
constexpr size_t kBlockBytes = 64 << 10;

/// Reads and tokenizes one shard. `shardName` is what issues are reported under. Problems in the
/// data are reported, never thrown; a file that cannot be opened throws.
ShardTokens tokenizeShard(const std::string &path, const std::string &shardName,
                          const Tokenizer &tok, ThreadPool &pool, DataReport &report);

} // namespace ttt::data
