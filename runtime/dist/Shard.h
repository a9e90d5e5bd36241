// ZeRO-1: how the AdamW moments are split over the ranks of a data-parallel job.
//
// Rank r owns the r-th contiguous slice of the flat parameter space (every parameter one after
// the other in parameter-table order; on the GPU that is the plan's `params` region, slots
// included). Every slice has the same length, the space padded with zeros at its end, so one
// reduce-scatter hands each rank the averaged gradients of its slice and one all-gather hands
// every rank the updated parameters (NCCL and MPI want equal counts). docs/distributed.md says
// why this layout and not a slice of every bucket.
#pragma once

#include <cstdint>

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
} // namespace ttt::dist
