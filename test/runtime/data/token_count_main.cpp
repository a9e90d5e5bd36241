// Prints "<shard> <documents> <tokens>" for each shard of a data source; check_token_count.py
// compares it with Debian's python3-sentencepiece on the same whole documents.
#include "runtime/data/ShardSource.h"
#include "runtime/data/ShardTokenizer.h"

#include <iostream>

int main(int argc, char **argv) {
  using namespace ttt::data;
  try {
    SourceOptions o;
    o.data = argc > 1 ? argv[1] : "sample";
    auto tok = Tokenizer::load(argc > 2 ? argv[2] : "");
    ShardSource src(o);
    ThreadPool pool(2);
    DataReport report(&std::cerr);
    for (const auto *list : {&src.train(), &src.validation()})
      for (const auto &ref : *list) {
        ShardTokens t = tokenizeShard(src.localFile(ref), ref.name, *tok, pool, report);
        std::cout << ref.name << " " << t.documents << " " << t.tokens.size() << "\n";
      }
    return report.total() == 0 ? 0 : 2;
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
