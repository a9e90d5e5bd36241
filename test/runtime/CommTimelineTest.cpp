// The gradient reduction timeline (runtime/dist/CommTimeline.h): what the backward hid, what it
// did not, the log line and the Chrome trace.
#include "runtime/dist/CommTimeline.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {
using ttt::dist::CommTimeline;

// Three buckets: two reduced while the backward ran (it ends at 10 ms), the third ends 1.5 ms
// after it, half of it hidden.
CommTimeline sample() {
  CommTimeline t;
  t.step = 2;
  t.rank = 0;
  t.ranks = 2;
  t.computeEndMs = 10.0;
  t.buckets = {
      {0, 4000000, 3.0, 3.1, 5.1}, {1, 2000000, 6.0, 6.2, 7.2}, {2, 1000000, 9.5, 8.5, 11.5}};
  return t;
}

TEST(CommTimeline, SplitsTheReductionIntoHiddenAndExposed) {
  const CommTimeline t = sample();
  EXPECT_DOUBLE_EQ(t.reduceMs(), 2.0 + 1.0 + 3.0);
  EXPECT_DOUBLE_EQ(t.hiddenMs(), 2.0 + 1.0 + 1.5);
  EXPECT_DOUBLE_EQ(t.exposedMs(), 1.5);
  CommTimeline done = t;
  done.buckets.pop_back(); // everything ended before the backward did
  EXPECT_DOUBLE_EQ(done.exposedMs(), 0.0);
  EXPECT_DOUBLE_EQ(done.hiddenMs(), done.reduceMs());
}

TEST(CommTimeline, SummaryIsOneLineWithTheNumbers) {
  const std::string line = sample().summary("t.json");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("rank 0 of 2, step 2"), std::string::npos) << line;
  EXPECT_NE(line.find("3 buckets, 7.0 MB"), std::string::npos) << line;
  EXPECT_NE(line.find("reductions 6.00 ms, 4.50 ms (75%) while the backward ran"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("ended 1.50 ms after it"), std::string::npos) << line;
  EXPECT_NE(line.find("t.json"), std::string::npos) << line;
}

TEST(CommTimeline, ChromeTraceHasBothStreams) {
  const nlohmann::json doc = nlohmann::json::parse(sample().chromeTrace());
  int compute = 0, reduce = 0, ready = 0;
  for (const auto &e : doc.at("traceEvents")) {
    const std::string ph = e.at("ph");
    if (ph == "X" && e.at("tid") == 1) {
      ++compute;
      EXPECT_DOUBLE_EQ(e.at("dur").get<double>(), 10000.0); // microseconds
    }
    if (ph == "X" && e.at("tid") == 2) {
      ++reduce;
      EXPECT_GT(e.at("dur").get<double>(), 0.0);
      EXPECT_GT(e.at("args").at("bytes").get<int64_t>(), 0);
    }
    if (ph == "i")
      ++ready;
  }
  EXPECT_EQ(compute, 1);
  EXPECT_EQ(reduce, 3);
  EXPECT_EQ(ready, 3);
  EXPECT_DOUBLE_EQ(doc.at("otherData").at("exposed_ms").get<double>(), 1.5);
}
} // namespace
