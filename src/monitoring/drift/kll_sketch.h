#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ferry::monitoring::drift {

// A KLL quantile sketch (Karnin, Lang, Liberty 2016) of doubles: a stack of levels, where
// an item at level h stands for 2^h inputs. A full level is sorted and halved (every
// other item, from a random offset, moves up with twice the weight).
//
// Why KLL rather than a t-digest: it is mergeable without changing its error (merging is
// level-wise concatenation, so a window merged from sub-windows is as good as one sketch
// of the same inputs), its rank error is uniform over the distribution (KS and chi² care
// about the CDF everywhere, not only in the tails), and its error is a sum of independent
// ±w steps that the sketch can account for exactly (rank_variance below), which is what
// the drift tests use to correct their effective sample size.
//
// Memory: about 3·k doubles whatever the input count. Error: the sketch is exact until
// level 0 first fills (about k inputs); after that each compaction of a level of weight w
// moves the rank of any query point by 0 or ±w with equal signs, so the rank error of any
// one point has mean 0 and variance at most rank_variance(); the normalized rank error's
// standard deviation is sqrt(rank_variance()) / count(). For k = 200 that is about 0.3 %
// (measured in kll_sketch_test.cc; the KLL paper's bound is O(1/k) with high probability).
//
// NaN inputs are refused by Add (the caller counts them as missing).
// Thread-safety: a value; one thread at a time (const methods may run concurrently).
class KllSketch {
 public:
  static constexpr uint32_t kDefaultK = 200;
  static constexpr uint32_t kMinK = 8;
  static constexpr uint64_t kDefaultSeed = 0x9e3779b97f4a7c15ULL;

  // REQUIRES: k >= kMinK. `seed` fixes the compaction offsets (reproducible sketches).
  // `level0_capacity`: level 0 holds at least this many raw inputs before it compacts
  // (0: KLL's own capacity, about k·(2/3)^depth). A larger level 0 makes an update a
  // plain append and the sketch exact for longer (fewer, longer sorts; fewer compactions,
  // so a smaller rank_variance), at 8 bytes per item held.
  explicit KllSketch(uint32_t k = kDefaultK, uint64_t seed = kDefaultSeed, uint32_t level0_capacity = 0);

  // Adds one input; false (and nothing added) for NaN.
  bool Add(double x);
  // Adds every input of `other` (which may have another k: this sketch's k wins).
  void Merge(const KllSketch& other);

  uint32_t k() const { return k_; }
  uint64_t count() const { return n_; }
  bool empty() const { return n_ == 0; }
  double min() const { return min_; }  // REQUIRES: !empty()
  double max() const { return max_; }  // REQUIRES: !empty()
  // Sum over compactions of w², an upper bound of the variance of any rank estimate.
  double rank_variance() const { return rank_var_; }
  // Standard deviation of the normalized rank error: sqrt(rank_variance()) / count().
  double normalized_rank_error() const;
  // Items held (memory is about this many doubles).
  size_t retained() const;

  // Fraction of inputs <= x (estimated).
  double Cdf(double x) const;
  // The input of estimated rank q·count(), q in [0, 1]. REQUIRES: !empty().
  double Quantile(double q) const;
  // (value, weight) of every retained item, sorted by value; weights sum to count().
  std::vector<std::pair<double, uint64_t>> SortedItems() const;

  // The levels as stored (level h holds items of weight 2^h), for serialization. Every
  // level but 0 is sorted (compaction promotes sorted runs and merges them in), so a
  // compaction above level 0 and SortedItems merge rather than sort.
  const std::vector<std::vector<double>>& levels() const { return levels_; }
  // Rebuilds a sketch from its serialized parts; INVALID_ARGUMENT (naming the part) when
  // they do not fit together (weights do not add up to n, NaN items, min > max).
  static Result<KllSketch> FromParts(uint32_t k, uint64_t n, double min, double max, double rank_variance,
                                     std::vector<std::vector<double>> levels);

 private:
  uint64_t Capacity(size_t level) const { return caps_[level]; }
  void RecomputeCapacities();
  void Compress();
  void CompactLevel(size_t level);
  uint64_t NextRandom();

  uint32_t k_;
  uint32_t level0_capacity_;
  uint64_t rng_;
  uint64_t n_ = 0;
  double min_ = 0, max_ = 0;
  double rank_var_ = 0;
  size_t size_ = 0;  // items over all levels
  std::vector<uint64_t> caps_;  // per level; depends on the number of levels
  uint64_t total_cap_ = 0;
  std::vector<std::vector<double>> levels_;
  std::vector<double> promoted_, merged_;  // CompactLevel's scratch (contents meaningless)
};

}  // namespace ferry::monitoring::drift
