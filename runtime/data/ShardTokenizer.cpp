#include "runtime/data/ShardTokenizer.h"

#include "runtime/data/GzipLineReader.h"

#include <nlohmann/json.hpp>

#include <deque>
#include <future>

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

bool documentText(const std::string &line, const std::string &shard, uint64_t lineNo,
                  DataReport &report, std::string &text) {
  if (!isValidUtf8(line)) {
    report.add(IssueKind::InvalidUtf8, shard, lineNo, "line skipped");
    return false;
  }
  nlohmann::json doc = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    report.add(IssueKind::NotJson, shard, lineNo, "line skipped");
    return false;
  }
  auto it = doc.find("text");
  if (it == doc.end() || !it->is_string()) {
    report.add(IssueKind::NoText, shard, lineNo, "line skipped");
    return false;
  }
  text = it->get_ref<const std::string &>();
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

struct Chunk {
  std::vector<std::string> lines;
  uint64_t firstLine = 0;
};

ShardTokens tokenizeChunk(const Chunk &chunk, const std::string &shard, const Tokenizer &tok,
                          DataReport &report) {
  ShardTokens out;
  std::string text;
  for (size_t i = 0; i < chunk.lines.size(); ++i) {
    if (!documentText(chunk.lines[i], shard, chunk.firstLine + i, report, text))
      continue;
    tok.appendDocument(text, out.tokens);
    ++out.documents;
    out.textBytes += text.size();
  }
  return out;
}

} // namespace

ShardTokens tokenizeShard(const std::string &path, const std::string &shardName,
                          const Tokenizer &tok, ThreadPool &pool, DataReport &report) {
  GzipLineReader reader(path);
  ShardTokens result;
  std::deque<std::future<ShardTokens>> inFlight;
  auto drainOne = [&] {
    ShardTokens part = inFlight.front().get();
    inFlight.pop_front();
    result.tokens.insert(result.tokens.end(), part.tokens.begin(), part.tokens.end());
    result.documents += part.documents;
    result.textBytes += part.textBytes;
  };
  // Chunks of ~1 MB of text keep the workers busy while bounding memory to a few chunks each.
  const size_t kChunkBytes = 1 << 20;
  const size_t maxInFlight = static_cast<size_t>(pool.size()) * 3;
  auto chunk = std::make_shared<Chunk>();
  size_t chunkBytes = 0;
  std::string line;
  auto submit = [&] {
    auto c = std::move(chunk);
    inFlight.push_back(pool.submit(
        [c, &shardName, &tok, &report] { return tokenizeChunk(*c, shardName, tok, report); }));
    chunk = std::make_shared<Chunk>();
    chunkBytes = 0;
    while (inFlight.size() > maxInFlight)
      drainOne();
  };
  while (reader.next(line)) {
    if (chunk->lines.empty())
      chunk->firstLine = reader.lineNumber();
    chunkBytes += line.size();
    chunk->lines.push_back(std::move(line));
    line.clear();
    if (chunkBytes >= kChunkBytes)
      submit();
  }
  if (!chunk->lines.empty())
    submit();
  while (!inFlight.empty())
    drainOne();
  if (reader.truncated())
    report.add(IssueKind::TruncatedGzip, shardName, reader.lineNumber() + 1,
               reader.error() + "; kept the " + std::to_string(reader.lineNumber()) +
                   " complete lines before it");
  if (reader.corrupt())
    report.add(IssueKind::CorruptGzip, shardName, reader.lineNumber() + 1,
               reader.error() + "; kept the " + std::to_string(reader.lineNumber()) +
                   " complete lines before it");
  if (result.documents == 0)
    report.add(IssueKind::EmptyShard, shardName, 0, "no documents");
  return result;
}

} // namespace ttt::data
