// ZeRO-1: how the AdamW moments are split over the ranks of a data-parallel job.
//
// Rank r owns the r-th contiguous slice of the flat parameter space (every parameter one after
// the other in parameter-table order; on the GPU that is the plan's `params` region, slots
// included). Every slice has the same length, the space padded with zeros at its end, so one
// reduce-scatter hands each rank the averaged gradients of its slice and one all-gather hands
// every rank the updated parameters (NCCL and MPI want equal counts). docs/distributed.md says
// why this layout and not a slice of every bucket.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace ttt::dist {
struct ShardLayout {
  int ranks = 1;
  int64_t perRank = 0; // units (elements or bytes) each rank owns
  int64_t padded() const { return perRank * ranks; }
  int64_t begin(int rank) const { return perRank * rank; }
  int64_t end(int rank) const { return perRank * (rank + 1); }
};

/// `total` units split over `ranks`, each slice a multiple of `granule` (the GPU keeps 256-byte
/// alignment so every slice starts where a coalesced kernel wants it).
inline ShardLayout shardLayout(int64_t total, int ranks, int64_t granule = 1) {
  ShardLayout s;
  s.ranks = ranks < 1 ? 1 : ranks;
  int64_t each = (total + s.ranks - 1) / s.ranks;
  s.perRank = (each + granule - 1) / granule * granule;
  return s;
}
/// One collective of a gradient bucket: [begin, end) of the flat space, reduced to rank `owner`
/// (ZeRO-1) or, with owner -1, to every rank (an all-reduce).
struct BucketPiece {
  int64_t begin = 0, end = 0;
  int owner = -1;
};

/// A bucket's slots ([begin, end) each, in any order) as collectives: adjacent slots merged into
/// one range (their padding is zero on every rank), and with `slices` (ZeRO-1) each range cut at
/// the slice bounds, every piece to the owner of its slice.
inline std::vector<BucketPiece> bucketPieces(std::vector<std::pair<int64_t, int64_t>> slots,
                                             const ShardLayout *slices) {
  std::sort(slots.begin(), slots.end());
  std::vector<std::pair<int64_t, int64_t>> merged;
  for (const auto &s : slots)
    if (!merged.empty() && merged.back().second == s.first)
      merged.back().second = s.second;
    else
      merged.push_back(s);
  std::vector<BucketPiece> pieces;
  for (const auto &[begin, end] : merged) {
    if (!slices) {
      pieces.push_back({begin, end, -1});
      continue;
    }
    for (int r = 0; r < slices->ranks; ++r) {
      const int64_t lo = std::max(begin, slices->begin(r)), hi = std::min(end, slices->end(r));
      if (lo < hi)
        pieces.push_back({lo, hi, r});
    }
  }
  return pieces;
}
} // namespace ttt::dist
