#include "runtime/data/ShardTokenizer.h"

#include "runtime/data/GzipLineReader.h"

#include <nlohmann/json.hpp>

#include <deque>
#include <future>
#include <memory>

namespace ttt::data {

bool isValidUtf8(std::string_view s) {
  const auto *p = reinterpret_cast<const unsigned char *>(s.data());
  const auto *end = p + s.size();
  while (p < end) {
    unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    unsigned cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n)
      return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static const unsigned kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    p += n + 1;
  }
  return true;
}

bool documentText(std::string_view line, const std::string &shard, uint64_t lineNo,
                  DataReport &report, std::string &text) {
  if (!isValidUtf8(line)) {
    report.add(IssueKind::InvalidUtf8, shard, lineNo, "line skipped");
    return false;
  }
  nlohmann::json doc =
      nlohmann::json::parse(line.data(), line.data() + line.size(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    report.add(IssueKind::NotJson, shard, lineNo, "line skipped");
    return false;
  }
  auto it = doc.find("text");
  if (it == doc.end() || !it->is_string()) {
    report.add(IssueKind::NoText, shard, lineNo, "line skipped");
    return false;
  }
  text = std::move(it->get_ref<std::string &>());
  // "\ud800" escapes decode to bytes that are not UTF-8; never hand them to the tokenizer
  if (!isValidUtf8(text)) {
    report.add(IssueKind::InvalidUtf8, shard, lineNo, "text decodes to invalid UTF-8; skipped");
    return false;
  }
  if (text.empty())
    report.add(IssueKind::EmptyDocument, shard, lineNo, "contributes BOS only");
  return true;
}

namespace {

// Whole lines of one shard, each ending with '\n', as the reader cut them from the gunzipped text.
struct Block {
  std::string text;
  uint64_t firstLine = 0;
  const std::string *shard = nullptr; // owned by tokenizeShards' caller's ShardInput
};

// Runs on a worker: UTF-8 check, JSON, tokenization of every line of the block, in order.
ShardTokens tokenizeBlock(const Block &block, const Tokenizer &tok, DataReport &report) {
  ShardTokens out;
  out.tokens.reserve(block.text.size() / 4 + 64);
  std::string text;
  std::string_view rest = block.text;
  for (uint64_t lineNo = block.firstLine; !rest.empty(); ++lineNo) {
    size_t nl = rest.find('\n'); // always found: every line of a block ends with '\n'
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (!documentText(line, *block.shard, lineNo, report, text))
      continue;
    tok.appendDocument(text, out.tokens);
    ++out.documents;
    out.textBytes += text.size();
  }
  return out;
}

// What is left to report about a shard once all its blocks are done (in file order, as before).
struct ShardEnd {
  bool truncated = false, corrupt = false;
  uint64_t lines = 0;
  std::string error;
};

} // namespace

std::vector<ShardTokens> tokenizeShards(const std::vector<ShardInput> &shards, const Tokenizer &tok,
                                        ThreadPool &pool, DataReport &report,
                                        uint64_t maxTextBytes) {
  std::vector<ShardTokens> results(shards.size());
  // In flight, in file order: a block's tokens, or the end of a shard (no future).
  struct Pending {
    size_t shard;
    std::future<ShardTokens> tokens;
    std::shared_ptr<ShardEnd> end;
  };
  std::deque<Pending> inFlight;
  auto drainOne = [&] {
    Pending p = std::move(inFlight.front());
    inFlight.pop_front();
    ShardTokens &r = results[p.shard];
    const std::string &name = shards[p.shard].name;
    if (p.end) {
      if (p.end->truncated)
        report.add(IssueKind::TruncatedGzip, name, p.end->lines + 1,
                   p.end->error + "; kept the " + std::to_string(p.end->lines) +
                       " complete lines before it");
      if (p.end->corrupt)
        report.add(IssueKind::CorruptGzip, name, p.end->lines + 1,
                   p.end->error + "; kept the " + std::to_string(p.end->lines) +
                       " complete lines before it");
      if (r.documents == 0)
        report.add(IssueKind::EmptyShard, name, 0, "no documents");
      return;
    }
    ShardTokens part = p.tokens.get();
    if (r.tokens.empty())
      r.tokens = std::move(part.tokens);
    else
      r.tokens.insert(r.tokens.end(), part.tokens.begin(), part.tokens.end());
    r.documents += part.documents;
    r.textBytes += part.textBytes;
  };
  // Enough blocks in flight that no worker waits while the oldest one is still being tokenized.
  const size_t maxInFlight = static_cast<size_t>(pool.size()) * 4 + 4;
  uint64_t bytesRead = 0;
  try {
    for (size_t i = 0; i < shards.size(); ++i) {
      if (maxTextBytes && bytesRead >= maxTextBytes)
        break;
      GzipLineReader reader(shards[i].path());
      for (;;) {
        auto block = std::make_shared<Block>();
        block->firstLine = reader.lineNumber() + 1;
        block->shard = &shards[i].name;
        uint64_t lines = 0;
        if (!reader.nextBlock(block->text, kBlockBytes, lines))
          break;
        bytesRead += block->text.size();
        inFlight.push_back({i, pool.submit([block, &tok, &report] {
                              return tokenizeBlock(*block, tok, report);
                            }),
                            nullptr});
        while (inFlight.size() > maxInFlight)
          drainOne();
        if (maxTextBytes && bytesRead >= maxTextBytes)
          break;
      }
      if (maxTextBytes && bytesRead >= maxTextBytes)
        break; // a cut measurement: nothing to report about this shard
      auto end = std::make_shared<ShardEnd>();
      end->truncated = reader.truncated();
      end->corrupt = reader.corrupt();
      end->lines = reader.lineNumber();
      end->error = reader.error();
      inFlight.push_back({i, {}, end});
    }
    while (!inFlight.empty())
      drainOne();
  } catch (...) {
    // blocks still running refer to `shards`, `tok` and `report`: let them finish first
    for (auto &p : inFlight)
      if (p.tokens.valid())
        p.tokens.wait();
    throw;
  }
  return results;
}

ShardTokens tokenizeShard(const std::string &path, const std::string &shardName,
                          const Tokenizer &tok, ThreadPool &pool, DataReport &report) {
  std::vector<ShardInput> one{{shardName, [path] { return path; }}};
  return std::move(tokenizeShards(one, tok, pool, report).front());
}

} // namespace ttt::data
