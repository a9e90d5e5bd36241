// The torchrun-style communicator (runtime/dist/Rendezvous.cpp): ranks as threads of this
// process on a free localhost port. Sums arrive in rank order on every rank; a missing rank 0, a
// rank that dies, and a bad environment each stop with a message naming what happened, within
// the timeout.
#include "runtime/dist/Comm.h"
#include "runtime/dist/Shard.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {
using ttt::dist::Communicator;
using ttt::dist::connectRendezvous;

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(Rendezvous, ThreeRanksSumInRankOrder) {
  const int port = freePort(), n = 3;
  std::vector<std::unique_ptr<Communicator>> comms(n);
  std::vector<std::string> errors(n);
  std::vector<std::vector<double>> sums(n);
  std::vector<std::vector<float>> fsums(n);
  std::vector<std::thread> ranks;
  for (int r = 0; r < n; ++r)
    ranks.emplace_back([&, r] {
      comms[size_t(r)] = connectRendezvous(r, n, "127.0.0.1", port, 20, errors[size_t(r)]);
      if (!comms[size_t(r)])
        return;
      // Values whose float sum depends on the order: 1e8 + 1 + (-1e8) in rank order.
      std::vector<double> d = {double(r + 1), r == 0 ? 0.5 : 0.25};
      std::vector<float> f = {r == 0 ? 1e8f : r == 1 ? 1.0f : -1e8f};
      errors[size_t(r)] = comms[size_t(r)]->allReduceSum(d.data(), int64_t(d.size()));
      if (errors[size_t(r)].empty())
        errors[size_t(r)] = comms[size_t(r)]->allReduceSum(f.data(), 1);
      if (errors[size_t(r)].empty())
        errors[size_t(r)] = comms[size_t(r)]->barrier();
      sums[size_t(r)] = d;
      fsums[size_t(r)] = f;
    });
  for (auto &t : ranks)
    t.join();
  for (int r = 0; r < n; ++r) {
    ASSERT_EQ(errors[size_t(r)], "") << "rank " << r;
    EXPECT_EQ(comms[size_t(r)]->rank(), r);
    EXPECT_EQ(comms[size_t(r)]->size(), n);
    EXPECT_EQ(comms[size_t(r)]->name(), "torchrun");
    EXPECT_EQ(sums[size_t(r)], (std::vector<double>{6.0, 1.0})) << "rank " << r;
    // (1e8 + 1) rounds to 1e8 in float, then - 1e8 = 0: rank order, the same on every rank.
    EXPECT_EQ(fsums[size_t(r)], (std::vector<float>{0.0f})) << "rank " << r;
  }
}

// ZeRO-1's collectives as the base class builds them from allReduceSum (the torchrun and
// single-process communicators use these; the MPI plugin has its own), and the slice layout.
TEST(Rendezvous, ZeroCollectivesOverThreeRanks) {
  const int port = freePort(), n = 3;
  const int64_t count = 2;
  std::vector<std::unique_ptr<Communicator>> comms(n);
  std::vector<std::string> errors(n);
  std::vector<std::vector<double>> scattered(n), gathered(n), rooted(n), after(n);
  std::vector<std::vector<float>> fscattered(n), frooted(n);
  std::vector<std::thread> ranks;
  for (int r = 0; r < n; ++r)
    ranks.emplace_back([&, r] {
      comms[size_t(r)] = connectRendezvous(r, n, "127.0.0.1", port, 20, errors[size_t(r)]);
      if (!comms[size_t(r)])
        return;
      Communicator &c = *comms[size_t(r)];
      // Rank r sends 10 r + i at position i of the n x count values.
      std::vector<double> send(size_t(n * count));
      std::vector<float> fsend(size_t(n * count));
      for (size_t i = 0; i < send.size(); ++i)
        send[i] = 10.0 * r + double(i), fsend[i] = float(send[i]);
      scattered[size_t(r)].resize(size_t(count));
      fscattered[size_t(r)].resize(size_t(count));
      std::string &e = errors[size_t(r)];
      e = c.reduceScatterSum(send.data(), scattered[size_t(r)].data(), count);
      if (e.empty())
        e = c.reduceScatterSum(fsend.data(), fscattered[size_t(r)].data(), count);
      // Each rank's slice is {r, -r}.
      std::vector<double> mine = {double(r), -double(r)};
      gathered[size_t(r)].assign(size_t(n * count), 99.0);
      if (e.empty())
        e = c.allGather(mine.data(), gathered[size_t(r)].data(), count);
      rooted[size_t(r)].assign(size_t(n * count), 99.0);
      if (e.empty())
        e = c.gatherToRoot(mine.data(), rooted[size_t(r)].data(), count);
      std::vector<float> fmine = {float(r), -float(r)};
      frooted[size_t(r)].assign(size_t(n * count), 99.0f);
      if (e.empty())
        e = c.gatherToRoot(fmine.data(), frooted[size_t(r)].data(), count);
      // A sum after the gathers still meets the right values (the streams stay in step).
      after[size_t(r)] = {double(r + 1)};
      if (e.empty())
        e = c.allReduceSum(after[size_t(r)].data(), 1);
    });
  for (auto &t : ranks)
    t.join();
  const std::vector<double> all = {0, 0, 1, -1, 2, -2};
  for (int r = 0; r < n; ++r) {
    ASSERT_EQ(errors[size_t(r)], "") << "rank " << r;
    // Position i summed over the ranks: 30 + 3 i; rank r gets positions 2r, 2r + 1.
    std::vector<double> want = {30.0 + 3 * (2 * r), 30.0 + 3 * (2 * r + 1)};
    EXPECT_EQ(scattered[size_t(r)], want) << "rank " << r;
    EXPECT_EQ(fscattered[size_t(r)], (std::vector<float>(want.begin(), want.end())))
        << "rank " << r;
    EXPECT_EQ(gathered[size_t(r)], all) << "rank " << r;
    // Only rank 0's buffer is written by a gather to the root.
    EXPECT_EQ(rooted[size_t(r)], r == 0 ? all : std::vector<double>(6, 99.0)) << "rank " << r;
    EXPECT_EQ(frooted[size_t(r)],
              r == 0 ? std::vector<float>(all.begin(), all.end()) : std::vector<float>(6, 99.0f))
        << "rank " << r;
    EXPECT_EQ(after[size_t(r)], std::vector<double>{6.0}) << "rank " << r;
  }
}

TEST(Shard, EqualSlicesCoverTheSpace) {
  // 1000 bytes over 3 ranks in 256-byte granules: 334 -> 512 each, 1536 in all.
  ttt::dist::ShardLayout s = ttt::dist::shardLayout(1000, 3, 256);
  EXPECT_EQ(s.perRank, 512);
  EXPECT_EQ(s.padded(), 1536);
  EXPECT_EQ(s.begin(2), 1024);
  EXPECT_EQ(s.end(2), 1536);
  // One rank: exactly the space (the single-GPU layout).
  EXPECT_EQ(ttt::dist::shardLayout(4096, 1, 256).perRank, 4096);
  // Element slices: 7 over 2 ranks is 4 + 4, the last value padding.
  s = ttt::dist::shardLayout(7, 2);
  EXPECT_EQ(s.perRank, 4);
  EXPECT_EQ(s.padded(), 8);
}

// A bucket's collectives (the CUDA session's overlap): adjacent slots merged, and with ZeRO-1 cut
// at the slice bounds, each piece to its owner.
TEST(Shard, BucketPiecesMergeAndCutAtSlices) {
  using ttt::dist::BucketPiece;
  auto same = [](const std::vector<BucketPiece> &got, const std::vector<BucketPiece> &want) {
    if (got.size() != want.size())
      return false;
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i].begin != want[i].begin || got[i].end != want[i].end ||
          got[i].owner != want[i].owner)
        return false;
    return true;
  };
  // Slots in backward order, two of them adjacent to a third, one apart.
  std::vector<std::pair<int64_t, int64_t>> slots = {
      {768, 1024}, {256, 512}, {512, 768}, {1280, 1536}};
  EXPECT_TRUE(same(ttt::dist::bucketPieces(slots, nullptr), {{256, 1024, -1}, {1280, 1536, -1}}));
  // Four ranks of 512 bytes: [256, 1024) spans ranks 0 and 1, [1280, 1536) lies in rank 2.
  ttt::dist::ShardLayout slices = ttt::dist::shardLayout(2048, 4, 256);
  EXPECT_TRUE(same(ttt::dist::bucketPieces(slots, &slices),
                   {{256, 512, 0}, {512, 1024, 1}, {1280, 1536, 2}}));
}

TEST(Rendezvous, OneRankNeedsNoNetwork) {
  std::string err;
  auto comm = connectRendezvous(0, 1, "", 0, 1, err);
  ASSERT_TRUE(comm) << err;
  double x = 2.5;
  EXPECT_EQ(comm->allReduceSum(&x, 1), "");
  EXPECT_EQ(x, 2.5);
}

TEST(Rendezvous, NoRankZeroTimesOutWithAMessage) {
  const int port = freePort();
  std::string err;
  const auto start = std::chrono::steady_clock::now();
  auto comm = connectRendezvous(1, 2, "127.0.0.1", port, 1, err);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(comm);
  EXPECT_NE(err.find("could not reach rank 0 at 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << err;
  EXPECT_LT(seconds, 5.0);
}

TEST(Rendezvous, ARankThatDiesStopsTheOthers) {
  const int port = freePort();
  std::unique_ptr<Communicator> zero;
  std::string zeroErr, oneErr, sumErr;
  std::thread rank0([&] {
    zero = connectRendezvous(0, 2, "127.0.0.1", port, 20, zeroErr);
    if (zero) {
      double x = 1;
      sumErr = zero->allReduceSum(&x, 1);
    }
  });
  {
    auto one = connectRendezvous(1, 2, "127.0.0.1", port, 20, oneErr);
    ASSERT_TRUE(one) << oneErr;
  } // rank 1 goes away without taking part in the sum
  rank0.join();
  ASSERT_EQ(zeroErr, "");
  EXPECT_NE(sumErr.find("rank 1 closed its connection"), std::string::npos) << sumErr;
}

TEST(Rendezvous, BadEnvironmentIsOneLine) {
  ::setenv("RANK", "2", 1);
  ::setenv("WORLD_SIZE", "2", 1);
  std::string err;
  EXPECT_FALSE(ttt::dist::openRendezvous(err));
  EXPECT_NE(err.find("0 <= RANK < WORLD_SIZE"), std::string::npos) << err;
  ::setenv("RANK", "0", 1);
  ::unsetenv("MASTER_ADDR");
  ::unsetenv("MASTER_PORT");
  EXPECT_FALSE(ttt::dist::openRendezvous(err));
  EXPECT_NE(err.find("needs MASTER_ADDR and MASTER_PORT"), std::string::npos) << err;
  ::unsetenv("RANK");
  ::unsetenv("WORLD_SIZE");
}

// torchrun's agent holds MASTER_PORT (its own store): under it the rendezvous takes the next
// port; TTT_RENDEZVOUS_PORT overrides both, and a bad one is one line.
TEST(Rendezvous, PortUnderTorchrunAndOverride) {
  std::string err;
  ::unsetenv("TTT_RENDEZVOUS_PORT");
  ::unsetenv("TORCHELASTIC_RUN_ID");
  EXPECT_EQ(ttt::dist::rendezvousPort(29500, err), 29500);
  ::setenv("TORCHELASTIC_RUN_ID", "none", 1);
  EXPECT_EQ(ttt::dist::rendezvousPort(29500, err), 29501);
  EXPECT_EQ(ttt::dist::rendezvousPort(65535, err), -1);
  EXPECT_NE(err.find("TTT_RENDEZVOUS_PORT"), std::string::npos) << err;
  ::setenv("TTT_RENDEZVOUS_PORT", "31000", 1);
  EXPECT_EQ(ttt::dist::rendezvousPort(29500, err), 31000);
  ::setenv("TTT_RENDEZVOUS_PORT", "70000", 1);
  EXPECT_EQ(ttt::dist::rendezvousPort(29500, err), -1);
  EXPECT_EQ(err, "TTT_RENDEZVOUS_PORT='70000' is not a port (1-65535)");
  ::unsetenv("TTT_RENDEZVOUS_PORT");
  ::unsetenv("TORCHELASTIC_RUN_ID");
}
} // namespace
