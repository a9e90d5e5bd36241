// Stage-by-stage throughput of the data pipeline on a synthetic large shard (test-only tool).
//
//   ttt_data_bench [--repeat K] [--threads N[,N...]] [--tokenizer PATH] [--keep]
//
// The input is the embedded sample's train shards concatenated K times into one multi-member gzip
// file (a valid C4-format shard: concatenated gzip members are one stream). Stages, each timed on
// its own: gunzip + line split; + UTF-8 check + JSON; tokenization alone (texts already in memory,
// documents split statically over N threads, no pipeline); the full pipeline (tokenizeShard) with
// N workers. Every line ends with an FNV-1a digest of the tokens, so two builds can be compared.
#include "runtime/data/GzipLineReader.h"
#include "runtime/data/ShardSource.h"
#include "runtime/data/ShardTokenizer.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <unistd.h>

namespace fs = std::filesystem;
using namespace ttt::data;

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t fnv(const std::vector<uint16_t> &t) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint16_t v : t)
    for (int b = 0; b < 2; ++b)
      h = (h ^ ((v >> (8 * b)) & 0xFF)) * 0x100000001b3ull;
  return h;
}

void line(const std::string &stage, int threads, uint64_t tokens, uint64_t bytes, double s,
          uint64_t digest) {
  std::printf("%-34s threads %2d  %9.3f s  %6.1f MB/s  %10.0f tokens/s  %9.0f tokens/s/thread  "
              "digest %016llx\n",
              stage.c_str(), threads, s, bytes / s / 1e6, tokens / s, tokens / s / threads,
              static_cast<unsigned long long>(digest));
  std::fflush(stdout);
}

} // namespace

int main(int argc, char **argv) {
  int repeat = 3;
  std::vector<int> threadCounts;
  std::string tokPath;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--repeat" && i + 1 < argc)
      repeat = std::stoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) {
      std::stringstream ss(argv[++i]);
      std::string n;
      while (std::getline(ss, n, ','))
        threadCounts.push_back(std::stoi(n));
    } else if (a == "--tokenizer" && i + 1 < argc)
      tokPath = argv[++i];
    else if (a == "--keep")
      keep = true;
    else {
      std::cerr << "usage: ttt_data_bench [--repeat K] [--threads N[,N...]] [--tokenizer PATH]\n";
      return 2;
    }
  }
  if (threadCounts.empty())
    threadCounts = {1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
  try {
    auto tok = Tokenizer::load(tokPath);
    SourceOptions so;
    ShardSource src(so);
    fs::path dir = fs::temp_directory_path() / ("ttt-data-bench-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    fs::path big = dir / "c4-train.00000-of-00001.json.gz";
    {
      std::ofstream out(big, std::ios::binary);
      for (int k = 0; k < repeat; ++k)
        for (const auto &ref : src.train()) {
          std::ifstream in(src.localFile(ref), std::ios::binary);
          out << in.rdbuf();
        }
    }
    std::printf("input: sample train shards x %d = %s (%.1f MB gzip)\n", repeat,
                big.string().c_str(), fs::file_size(big) / 1e6);

    // 1. gunzip + line split
    uint64_t bytes = 0, lines = 0;
    {
      auto t0 = std::chrono::steady_clock::now();
      GzipLineReader r(big.string());
      std::string l;
      while (r.next(l))
        bytes += l.size() + 1, ++lines;
      line("gunzip+lines", 1, 0, bytes, since(t0), lines);
    }
    // 2. + UTF-8 check + JSON -> texts
    std::vector<std::string> texts;
    {
      auto t0 = std::chrono::steady_clock::now();
      GzipLineReader r(big.string());
      DataReport rep;
      std::string l, text;
      while (r.next(l))
        if (documentText(l, big.filename().string(), r.lineNumber(), rep, text))
          texts.push_back(text);
      line("gunzip+lines+json", 1, 0, bytes, since(t0), texts.size());
    }
    // 3. tokenization alone, documents split statically (interleaved) over the threads
    for (int n : threadCounts) {
      std::vector<std::vector<uint16_t>> per(texts.size());
      std::atomic<size_t> nextDoc{0};
      auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> ts;
      for (int w = 0; w < n; ++w)
        ts.emplace_back([&] {
          for (size_t d; (d = nextDoc.fetch_add(1)) < texts.size();)
            tok->appendDocument(texts[d], per[d]);
        });
      for (auto &t : ts)
        t.join();
      double s = since(t0);
      std::vector<uint16_t> all;
      for (auto &p : per)
        all.insert(all.end(), p.begin(), p.end());
      line("tokenize only (texts in memory)", n, all.size(), bytes, s, fnv(all));
    }
    // 4. the full pipeline
    for (int n : threadCounts) {
      ThreadPool pool(n);
      DataReport rep;
      auto t0 = std::chrono::steady_clock::now();
      ShardTokens t = tokenizeShard(big.string(), big.filename().string(), *tok, pool, rep);
      line("pipeline tokenizeShard", n, t.tokens.size(), bytes, since(t0), fnv(t.tokens));
    }
    if (!keep)
      fs::remove_all(dir);
    return 0;
  } catch (const std::exception &e) {
    std::cerr << "ttt_data_bench: " << e.what() << "\n";
    return 1;
  }
}
