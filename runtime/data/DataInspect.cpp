#include "runtime/data/DataInspect.h"

#include "runtime/data/GzipLineReader.h"
#include "runtime/data/ShardTokenizer.h"

#include <chrono>
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

    if (opts.throughput) {
      int all = opts.loader.threads > 0 ? opts.loader.threads
                                        : std::max(1u, std::thread::hardware_concurrency());
      for (int threads : {1, all}) {
        ThreadPool pool(threads);
        DataReport r;
        auto t0 = std::chrono::steady_clock::now();
        ShardTokens t = tokenizeShard(firstPath, first.name, *tok, pool, r);
        double s = seconds(t0);
        out << "throughput (" << first.name << ", " << threads << " worker"
            << (threads > 1 ? "s" : "") << "): " << t.documents << " docs, " << t.tokens.size()
            << " tokens in " << s << " s = " << static_cast<uint64_t>(t.tokens.size() / s)
            << " tokens/s (" << static_cast<uint64_t>(t.tokens.size() / s / threads)
            << " per worker)\n";
        if (threads == all)
          break;
      }
    }

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
