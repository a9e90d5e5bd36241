#include "DataTestUtil.h"

#include "runtime/data/Loader.h"

#include <algorithm>
#include <set>

using namespace ttt::data;
using namespace ttt::data::testing;

namespace {

// Small shards and short windows, so a few dozen steps cross groups, shards and epochs.
struct Fixture {
  std::string dir;
  SourceOptions src;
  Fixture(const std::string &name, int shards = 5, int docs = 40) {
    dir = syntheticC4(name, shards, docs);
    src.data = dir;
  }
};

LoaderOptions small(BatchMode mode, int shardsPerGroup, int rank = 0, int world = 1) {
  LoaderOptions o;
  o.seqLen = 32;
  o.globalBatch = 8;
  o.rank = rank;
  o.worldSize = world;
  o.seed = 1234;
  o.shardsPerGroup = shardsPerGroup;
  o.threads = 2;
  o.mode = mode;
  return o;
}

using Rows = std::vector<std::vector<int32_t>>; // one entry per row: inputs then targets

Rows rowsOf(const Batch &b) {
  Rows r;
  for (int i = 0; i < b.rows; ++i) {
    std::vector<int32_t> row(b.inputs.begin() + i * b.seqLen, b.inputs.begin() + (i + 1) * b.seqLen);
    row.insert(row.end(), b.targets.begin() + i * b.seqLen, b.targets.begin() + (i + 1) * b.seqLen);
    r.push_back(row);
  }
  return r;
}

// Global batches of steps [0, n) read with `world` ranks, rows of all ranks concatenated.
std::vector<Rows> run(ShardSource &src, const LoaderOptions &base, int world, int n,
                      const Cursor *from = nullptr, Cursor *end = nullptr) {
  std::vector<Rows> out(n);
  for (int rank = 0; rank < world; ++rank) {
    LoaderOptions o = base;
    o.rank = rank;
    o.worldSize = world;
    DataReport report;
    TrainLoader loader(src, *tokenizer(), o, report);
    if (from)
      loader.seek(*from);
    Batch b;
    for (int s = 0; s < n; ++s) {
      loader.next(b);
      for (auto &row : rowsOf(b))
        out[s].push_back(row);
    }
    if (end && rank == 0)
      *end = loader.cursor();
  }
  return out;
}

} // namespace

TEST(Permutation, IsAPermutationAndDependsOnTheSeed) {
  auto a = seededPermutation(1000, 1), b = seededPermutation(1000, 2), c = seededPermutation(1000, 1);
  EXPECT_EQ(a, c);
  EXPECT_NE(a, b);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (uint32_t i = 0; i < 1000; ++i)
    ASSERT_EQ(sorted[i], i);
  // pinned values: the order must never change silently between versions (resumes depend on it)
  EXPECT_EQ(seededPermutation(5, 7), seededPermutation(5, 7));
}

TEST(Loader, WindowsOverlapByOneAndCoverTheStreamOncePerEpoch) {
  TTT_REQUIRE_TOKENIZER();
  Fixture f("windows", 1, 60);
  ShardSource src(f.src);
  // the expected stream: the one shard's documents, BOS + text + EOS
  DataReport r0;
  ThreadPool pool(1);
  std::vector<uint16_t> stream =
      tokenizeShard(src.train()[0].localPath, "s", *tokenizer(), pool, r0).tokens;
  const int T = 32;
  const size_t windows = (stream.size() - 1) / T;
  ASSERT_GT(windows, 40u);
  LoaderOptions o = small(BatchMode::Shuffled, 0);
  o.globalBatch = 1;
  DataReport report;
  TrainLoader loader(src, *tokenizer(), o, report);
  std::set<size_t> seen;
  std::vector<size_t> order;
  Batch b;
  for (size_t i = 0; i < windows; ++i) {
    loader.next(b);
    // find which window this is: the stream offset where its tokens sit
    size_t found = windows;
    for (size_t w = 0; w < windows; ++w)
      if (std::equal(b.inputs.begin(), b.inputs.end(), stream.begin() + w * T) &&
          std::equal(b.targets.begin(), b.targets.end(), stream.begin() + w * T + 1)) {
        found = w;
        break;
      }
    ASSERT_LT(found, windows) << "batch " << i << " is not a window of the stream";
    EXPECT_TRUE(seen.insert(found).second) << "window " << found << " repeated within an epoch";
    order.push_back(found);
    for (int t = 0; t < T; ++t)
      ASSERT_EQ(b.mask[t], b.targets[t] == 1 ? 0.0f : 1.0f);
  }
  EXPECT_EQ(seen.size(), windows);
  EXPECT_FALSE(std::is_sorted(order.begin(), order.end())) << "the order is not shuffled";
  EXPECT_EQ(loader.cursor().epoch, 0u);
  loader.next(b);
  EXPECT_EQ(loader.cursor().epoch, 1u); // wrapped into the next epoch
}

TEST(Loader, LossMaskDropsBosTargets) {
  TTT_REQUIRE_TOKENIZER();
  Fixture f("mask", 2, 30);
  ShardSource src(f.src);
  DataReport report;
  TrainLoader loader(src, *tokenizer(), small(BatchMode::Shuffled, 0), report);
  Batch b;
  int bosTargets = 0;
  for (int s = 0; s < 10; ++s) {
    loader.next(b);
    ASSERT_EQ(b.inputs.size(), 8u * 32u);
    for (size_t i = 0; i < b.targets.size(); ++i) {
      ASSERT_EQ(b.mask[i], b.targets[i] == Tokenizer::kBos ? 0.0f : 1.0f);
      bosTargets += b.targets[i] == Tokenizer::kBos;
    }
  }
  EXPECT_GT(bosTargets, 0) << "the test data never puts BOS in a target; the mask went untested";
}

class ResumeTest : public ::testing::TestWithParam<std::tuple<BatchMode, int>> {};

TEST_P(ResumeTest, ResumeEqualsUninterruptedAcrossShardsEpochsAndRankCounts) {
  TTT_REQUIRE_TOKENIZER();
  auto [mode, perGroup] = GetParam();
  Fixture f(std::string("resume") + (mode == BatchMode::Shuffled ? "s" : "r") +
            std::to_string(perGroup));
  ShardSource src(f.src);
  LoaderOptions o = small(mode, perGroup);
  const int total = 70; // several groups and more than one epoch of the 5 small shards
  Cursor endFull;
  auto full = run(src, o, 1, total, nullptr, &endFull);
  EXPECT_GE(endFull.epoch, 1u) << "the run should wrap an epoch; make the shards smaller";
  for (auto [split, worldA, worldB] : {std::tuple{13, 1, 1}, {29, 2, 4}, {41, 4, 1}, {55, 8, 2}}) {
    Cursor mid;
    auto a = run(src, o, worldA, split, nullptr, &mid);
    Cursor restored = Cursor::deserialize(mid.serialize());
    ASSERT_EQ(restored, mid);
    auto b = run(src, o, worldB, total - split, &restored);
    for (int s = 0; s < split; ++s)
      ASSERT_EQ(a[s], full[s]) << "step " << s << " with " << worldA << " ranks";
    for (int s = split; s < total; ++s)
      ASSERT_EQ(b[s - split], full[s]) << "step " << s << " after resuming at " << split
                                       << " from " << worldA << " onto " << worldB << " ranks";
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, ResumeTest,
                         ::testing::Values(std::tuple{BatchMode::Shuffled, 1},
                                           std::tuple{BatchMode::Shuffled, 2},
                                           std::tuple{BatchMode::Shuffled, 0},
                                           std::tuple{BatchMode::RowStreams, 1},
                                           std::tuple{BatchMode::RowStreams, 0}));

TEST(Loader, RowStreamsContinueWhereTheyStopped) {
  TTT_REQUIRE_TOKENIZER();
  Fixture f("rows", 3, 80);
  ShardSource src(f.src);
  DataReport report;
  TrainLoader loader(src, *tokenizer(), small(BatchMode::RowStreams, 0), report);
  Batch prev, b;
  loader.next(prev);
  EXPECT_TRUE(prev.streamsReset);
  int continued = 0;
  for (int s = 1; s < 30; ++s) {
    loader.next(b);
    if (b.streamsReset) {
      prev = b;
      continue;
    }
    for (int r = 0; r < b.rows; ++r) {
      // the first input of row r is the last target of row r one step earlier
      ASSERT_EQ(b.inputs[r * 32], prev.targets[r * 32 + 31]) << "step " << s << " row " << r;
    }
    // and rows are different streams, not copies
    EXPECT_NE(std::vector<int32_t>(b.inputs.begin(), b.inputs.begin() + 32),
              std::vector<int32_t>(b.inputs.begin() + 32, b.inputs.begin() + 64));
    ++continued;
    prev = b;
  }
  EXPECT_GT(continued, 10);
}

TEST(Loader, CursorForOtherSettingsIsRefused) {
  TTT_REQUIRE_TOKENIZER();
  Fixture f("fingerprint", 2, 20);
  ShardSource src(f.src);
  DataReport report;
  TrainLoader a(src, *tokenizer(), small(BatchMode::Shuffled, 0), report);
  LoaderOptions other = small(BatchMode::Shuffled, 0);
  other.seed = 99;
  TrainLoader b(src, *tokenizer(), other, report);
  EXPECT_THROW(b.seek(a.cursor()), std::runtime_error);
  EXPECT_THROW(Cursor::deserialize("{\"version\":2}"), std::runtime_error);
  EXPECT_THROW(Cursor::deserialize("not json"), std::runtime_error);
  LoaderOptions bad = small(BatchMode::Shuffled, 0, 0, 3); // 8 rows over 3 ranks
  EXPECT_THROW(TrainLoader(src, *tokenizer(), bad, report), std::runtime_error);
}

TEST(Validation, ConsecutiveWindowsInFileOrderAcrossRanks) {
  TTT_REQUIRE_TOKENIZER();
  Fixture f("val", 1, 200);
  ShardSource src(f.src);
  DataReport r0;
  ThreadPool pool(1);
  auto stream = tokenizeShard(src.validation()[0].localPath, "v", *tokenizer(), pool, r0).tokens;
  std::vector<Rows> perRank(2);
  int batches = 0;
  for (int rank = 0; rank < 2; ++rank) {
    DataReport report;
    ValidationLoader val(src, *tokenizer(), small(BatchMode::Shuffled, 0, rank, 2), report);
    Batch b;
    int n = 0;
    while (val.next(b)) {
      for (int r = 0; r < b.rows; ++r) {
        size_t w = static_cast<size_t>(n) * 8 + rank * 4 + r; // global window index
        ASSERT_TRUE(std::equal(b.inputs.begin() + r * 32, b.inputs.begin() + (r + 1) * 32,
                               stream.begin() + w * 32))
            << "batch " << n << " rank " << rank << " row " << r;
      }
      ++n;
    }
    EXPECT_EQ(static_cast<size_t>(n), ((stream.size() - 1) / 32) / 8); // tail dropped
    batches = n;
    val.reset();
    ASSERT_TRUE(val.next(b)); // reset starts over
    EXPECT_EQ(b.step, 0u);
  }
  EXPECT_GT(batches, 3);
}

TEST(Sample, EmbeddedSampleLoads) {
  TTT_REQUIRE_TOKENIZER();
  SourceOptions o; // data = "sample"
  ShardSource src(o);
  EXPECT_EQ(src.train().size(), 4u);
  EXPECT_EQ(src.validation().size(), 1u);
  EXPECT_EQ(src.train()[0].name, "c4-train.00000-of-00004.json.gz");
  DataReport report;
  LoaderOptions lo;
  lo.seqLen = 2048;
  lo.globalBatch = 4;
  lo.threads = 2;
  TrainLoader loader(src, *tokenizer(), lo, report);
  Batch b;
  loader.next(b);
  EXPECT_EQ(b.inputs.size(), 4u * 2048u);
  EXPECT_EQ(report.total(), 0u) << report.summary();
  EXPECT_EQ(loader.documentsTokenized(), 3415u);
}
