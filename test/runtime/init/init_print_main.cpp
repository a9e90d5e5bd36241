// Prints initial values for reference_init.py, which recomputes them in plain Python.
#include "runtime/init/Init.h"

#include <cstdio>
#include <vector>

int main() {
  using ttt::plan::InitKind;
  struct Case {
    const char *name;
    InitKind kind;
    const char *kindName;
    double std;
    uint64_t seed;
    int64_t begin, count;
  };
  const Case cases[] = {
      {"embed", InitKind::normal, "normal", 0.02, 0, 0, 400},
      {"layers.0.ttt.W1", InitKind::normal, "normal", 0.02, 1234567, 0, 300},
      {"layers.0.conv.kernel", InitKind::truncated_normal, "truncated_normal", 0.5, 42, 0, 400},
      // An index above 2^32 uses the third counter word.
      {"embed", InitKind::truncated_normal, "truncated_normal", 0.02, 0xfedcba9876543210ull,
       (int64_t(1) << 32) - 5, 10},
      {"final_norm", InitKind::ones, "ones", 0.0, 1, 0, 3},
      {"b1", InitKind::zeros, "zeros", 0.0, 1, 0, 3},
  };
  for (const Case &c : cases) {
    ttt::init::InitSpec s{c.name, c.kind, c.std, c.begin + c.count};
    std::vector<double> v(size_t(c.count));
    std::string err = ttt::init::initRange(s, c.seed, c.begin, c.count, v.data());
    if (!err.empty()) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 1;
    }
    for (int64_t i = 0; i < c.count; ++i)
      std::printf("%s %s %.17g %llu %lld %a\n", c.name, c.kindName, c.std,
                  (unsigned long long)c.seed, (long long)(c.begin + i), v[size_t(i)]);
  }
  return 0;
}
