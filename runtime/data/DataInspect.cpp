#include "runtime/data/DataInspect.h"

#include "runtime/data/GzipLineReader.h"
#include "runtime/data/ShardTokenizer.h"

#include <chrono>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <thread>

namespace ttt::data {
namespace {

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string hex(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string rate(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0fK", v / 1e3);
  return buf;
}

// The whole path (gunzip, lines, UTF-8 check, JSON, tokenization, reassembly in file order) over
// the train shards, repeated as often as needed so that each measurement runs ~benchSeconds.
void measureThroughput(const DataInspectOptions &opts, ShardSource &source, const Tokenizer &tok,
                       std::ostream &out) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int> counts = opts.benchWorkers;
  if (counts.empty()) {
    counts.push_back(1);
    int all = opts.loader.threads > 0 ? opts.loader.threads : cores;
    if (all != 1)
      counts.push_back(all);
  }
  std::vector<ShardInput> inputs;
  for (int rep = 0; rep < 10000; ++rep) // never read that far: maxTextBytes stops it
    for (const ShardRef &ref : source.train())
      inputs.push_back({ref.name, [&source, &ref] { return source.localFile(ref); }});
  out << "throughput: full pipeline (gunzip, JSON, tokenization on workers, reassembly in order) "
         "over the train shards, repeated; ~"
      << opts.benchSeconds << " s per line after a warm-up; " << cores << " cores here\n";
  double base = 0;
  for (int workers : counts) {
    ThreadPool pool(std::max(1, workers));
    DataReport quiet;
    // warm-up (page cache, allocator, tokenizer tables) that also calibrates how much to read
    const uint64_t warmBytes = 2u << 20;
    auto t0 = std::chrono::steady_clock::now();
    tokenizeShards(inputs, tok, pool, quiet, warmBytes);
    double bytesPerSecond = warmBytes / std::max(seconds(t0), 1e-3);
    uint64_t target = std::max<uint64_t>(warmBytes, static_cast<uint64_t>(bytesPerSecond * opts.benchSeconds));
    t0 = std::chrono::steady_clock::now();
    auto parts = tokenizeShards(inputs, tok, pool, quiet, target);
    double s = seconds(t0);
    uint64_t tokens = 0, docs = 0;
    for (const auto &p : parts)
      tokens += p.tokens.size(), docs += p.documents;
    double r = tokens / s;
    if (workers == 1)
      base = r;
    out << "  " << workers << (workers == 1 ? " worker:  " : " workers: ") << docs << " docs, "
        << tokens << " tokens in " << s << " s = " << rate(r) << " tokens/s, " << rate(r / workers)
        << " per worker";
    if (workers != 1 && base > 0)
      out << ", " << static_cast<int>(r / base * 10 + 0.5) / 10.0 << "x 1 worker";
    out << "\n";
  }
}

} // namespace

int runDataInspect(const DataInspectOptions &opts) {
  std::ostream &out = opts.out ? *opts.out : std::cout;
  try {
    auto tok = Tokenizer::load(opts.tokenizer);
    ShardSource source(opts.source);
    DataReport report(&std::cerr);
    out << "source:    " << source.id() << " (" << source.train().size() << " train, "
        << source.validation().size() << " validation shards)\n";
    out << "tokenizer: " << tok->path() << "\n";

    const ShardRef &first = source.train().front();
    std::string firstPath = source.localFile(first);
    GzipLineReader reader(firstPath);
    std::string line, text;
    DataReport quiet;
    for (int shown = 0; shown < opts.documents && reader.next(line);) {
      if (!documentText(line, first.name, reader.lineNumber(), quiet, text))
        continue;
      std::vector<uint16_t> ids;
      tok->appendDocument(text, ids);
      std::string preview = text.substr(0, 120);
      for (char &c : preview)
        if (c == '\n')
          c = ' ';
      out << "doc " << first.name << ":" << reader.lineNumber() << ": " << ids.size()
          << " tokens: \"" << preview << (text.size() > 120 ? "...\"" : "\"") << "\n  ids:";
      for (size_t i = 0; i < std::min<size_t>(ids.size(), 16); ++i)
        out << " " << ids[i];
      out << (ids.size() > 16 ? " ...\n" : "\n");
      ++shown;
    }

    if (opts.throughput)
      measureThroughput(opts, source, *tok, out);

    TrainLoader train(source, *tok, opts.loader, report);
    out << "train:     " << train.fingerprint() << "\n";
    Batch b;
    for (int i = 0; i < opts.batches; ++i) {
      train.next(b);
      uint64_t masked = 0;
      for (float m : b.mask)
        masked += m == 0.0f;
      out << "batch " << b.step << ": rows " << b.rows << " x " << b.seqLen << ", digest "
          << hex(batchDigest(b)) << ", BOS targets masked " << masked
          << (b.streamsReset ? ", streams reset" : "") << "\n";
    }
    out << "cursor:    " << train.cursor().serialize() << "\n";
    out << "tokenized: " << train.documentsTokenized() << " documents, " << train.tokensTokenized()
        << " tokens\n";
    if (opts.validation) {
      ValidationLoader val(source, *tok, opts.loader, report);
      int i = 0;
      while (i < opts.batches && val.next(b))
        out << "validation batch " << i++ << ": digest " << hex(batchDigest(b)) << "\n";
    }
    std::string issues = report.summary();
    out << "data issues: " << (issues.empty() ? "none" : issues) << "\n";
    return 0;
  } catch (const std::exception &e) {
    std::cerr << "ttt-run data: error: " << e.what() << "\n";
    return 1;
  }
}

} // namespace ttt::data
