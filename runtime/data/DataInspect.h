// `ttt-run data`: what a data source yields (documents, tokens, batch digests) and how fast.
#pragma once

#include "runtime/data/Loader.h"
#include "runtime/data/ShardSource.h"

#include <ostream>
#include <string>
#include <vector>

namespace ttt::data {

struct DataInspectOptions {
  SourceOptions source;
  std::string tokenizer; // empty: the default search (Tokenizer::locate)
  LoaderOptions loader;  // seq len, batch, seed, mode, threads
  int documents = 3;     // documents of the first train shard to print
  int batches = 4;       // digests of the first N train batches
  bool validation = false; // also digest the first N validation batches
  bool throughput = true;  // measure the full pipeline's tokens/s (see benchWorkers)
  /// Worker counts to measure; empty: 1 and loader.threads (0 there: all cores).
  std::vector<int> benchWorkers;
  double benchSeconds = 3.0; // per measurement, after a warm-up
  std::ostream *out = nullptr; // default std::cout
};

/// Returns a process exit code; errors are printed, never thrown.
int runDataInspect(const DataInspectOptions &opts);

} // namespace ttt::data
