// One shard -> one token stream: gunzip, JSON lines, tokenization on worker threads, in file order.
#pragma once

#include "runtime/data/DataReport.h"
#include "runtime/data/ThreadPool.h"
#include "runtime/data/Tokenizer.h"

#include <cstdint>
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
bool documentText(const std::string &line, const std::string &shard, uint64_t lineNo,
                  DataReport &report, std::string &text);

/// Reads and tokenizes one shard. `shardName` is what issues are reported under. Problems in the
/// data are reported, never thrown; a file that cannot be opened throws.
ShardTokens tokenizeShard(const std::string &path, const std::string &shardName,
                          const Tokenizer &tok, ThreadPool &pool, DataReport &report);

} // namespace ttt::data
