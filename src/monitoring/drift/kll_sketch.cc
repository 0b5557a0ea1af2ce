#include "monitoring/drift/kll_sketch.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "monitoring/drift/sort_doubles.h"

namespace ferry::monitoring::drift {

KllSketch::KllSketch(uint32_t k, uint64_t seed, uint32_t level0_capacity)
    : k_(std::max(k, kMinK)), level0_capacity_(level0_capacity), rng_(seed | 1), levels_(1) {
  RecomputeCapacities();
}

uint64_t KllSketch::NextRandom() {
  // xorshift64*: cheap, and seeded so that a sketch of the same inputs is the same sketch.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 2685821657736338717ULL;
}

void KllSketch::RecomputeCapacities() {
  caps_.resize(levels_.size());
  total_cap_ = 0;
  for (size_t h = 0; h < levels_.size(); ++h) {
    const size_t depth = levels_.size() - 1 - h;
    const double cap = std::ceil(k_ * std::pow(2.0 / 3.0, static_cast<double>(depth)));
    caps_[h] = std::max<uint64_t>(kMinK, static_cast<uint64_t>(cap));
    if (h == 0) caps_[h] = std::max<uint64_t>(caps_[h], level0_capacity_);
    total_cap_ += caps_[h];
  }
}

bool KllSketch::Add(double x) {
  if (std::isnan(x)) return false;
  if (n_ == 0) {
    min_ = max_ = x;
  } else {
    min_ = std::min(min_, x);
    max_ = std::max(max_, x);
  }
  ++n_;
  levels_[0].push_back(x);
  ++size_;
  if (size_ >= total_cap_) Compress();
  return true;
}

void KllSketch::Compress() {
  while (size_ >= total_cap_) {
    size_t h = 0;
    while (h < levels_.size() && levels_[h].size() < Capacity(h)) ++h;
    if (h == levels_.size()) return;
    CompactLevel(h);
  }
}

void KllSketch::CompactLevel(size_t h) {
  if (h + 1 == levels_.size()) {
    levels_.emplace_back();
    RecomputeCapacities();
  }
  std::vector<double>& level = levels_[h];
  // Levels above 0 are kept sorted (see levels()), so only level 0 needs a sort here.
  if (h == 0) SortDoubles(&level, &promoted_);
  // With an odd count the smallest item stays behind, unpaired.
  const size_t first = level.size() % 2;
  const size_t offset = NextRandom() >> 63;
  std::vector<double>& up = levels_[h + 1];
  // The promoted items are a sorted run: merging it in keeps the level above sorted.
  // (Into a buffer kept between compactions: inplace_merge would allocate every time.)
  promoted_.resize((level.size() - first - offset + 1) / 2);
  for (size_t i = first + offset, j = 0; i < level.size(); i += 2) promoted_[j++] = level[i];
  merged_.resize(up.size() + promoted_.size());
  std::merge(up.begin(), up.end(), promoted_.begin(), promoted_.end(), merged_.begin());
  up.swap(merged_);
  const size_t moved = (level.size() - first) / 2;
  level.resize(first);
  size_ -= moved;
  const double w = std::ldexp(1.0, static_cast<int>(h));
  rank_var_ += w * w;
}

void KllSketch::Merge(const KllSketch& other) {
  if (other.n_ == 0) return;
  if (n_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  if (levels_.size() < other.levels_.size()) {
    levels_.resize(other.levels_.size());
    RecomputeCapacities();
  }
  for (size_t h = 0; h < other.levels_.size(); ++h) {
    std::vector<double>& level = levels_[h];
    const size_t old_size = level.size();
    level.insert(level.end(), other.levels_[h].begin(), other.levels_[h].end());
    if (h > 0) std::inplace_merge(level.begin(), level.begin() + static_cast<ptrdiff_t>(old_size), level.end());
    size_ += other.levels_[h].size();
  }
  n_ += other.n_;
  rank_var_ += other.rank_var_;
  Compress();
}

double KllSketch::normalized_rank_error() const {
  return n_ == 0 ? 0.0 : std::sqrt(rank_var_) / static_cast<double>(n_);
}

size_t KllSketch::retained() const { return size_; }

std::vector<std::pair<double, uint64_t>> KllSketch::SortedItems() const {
  // Level 0 sorted, then each (sorted) level above merged in: O(size · levels) rather
  // than a sort of every item. Ties keep the lower level first, as a sort by (value,
  // weight) would.
  std::vector<double> zero = levels_[0], scratch;
  SortDoubles(&zero, &scratch);  // doubles sort faster than (value, weight) pairs
  std::vector<std::pair<double, uint64_t>> items, merged;
  items.reserve(size_);
  merged.reserve(size_);
  for (double v : zero) items.emplace_back(v, 1);
  for (size_t h = 1; h < levels_.size(); ++h) {
    if (levels_[h].empty()) continue;
    const uint64_t w = uint64_t{1} << h;
    merged.clear();
    auto it = items.begin();
    for (double v : levels_[h]) {
      while (it != items.end() && it->first <= v) merged.push_back(*it++);
      merged.emplace_back(v, w);
    }
    merged.insert(merged.end(), it, items.end());
    items.swap(merged);
  }
  return items;
}

double KllSketch::Cdf(double x) const {
  if (n_ == 0) return 0.0;
  uint64_t below = 0;
  for (size_t h = 0; h < levels_.size(); ++h) {
    for (double v : levels_[h]) {
      if (v <= x) below += uint64_t{1} << h;
    }
  }
  return static_cast<double>(below) / static_cast<double>(n_);
}

double KllSketch::Quantile(double q) const {
  if (n_ == 0) return std::nan("");
  if (q <= 0) return min_;
  if (q >= 1) return max_;
  const double target = q * static_cast<double>(n_);
  uint64_t cum = 0;
  for (const auto& [v, w] : SortedItems()) {
    cum += w;
    if (static_cast<double>(cum) >= target) return v;
  }
  return max_;
}

Result<KllSketch> KllSketch::FromParts(uint32_t k, uint64_t n, double min, double max, double rank_variance,
                                       std::vector<std::vector<double>> levels) {
  if (k < kMinK) return InvalidArgument("k: " + std::to_string(k) + " is below the minimum " + std::to_string(kMinK));
  if (levels.size() > 64) return InvalidArgument("levels: " + std::to_string(levels.size()) + " levels (at most 64)");
  if (!(rank_variance >= 0)) return InvalidArgument("rank_variance: must be >= 0");
  uint64_t weight = 0;
  size_t size = 0;
  for (size_t h = 0; h < levels.size(); ++h) {
    for (double v : levels[h]) {
      if (!std::isfinite(v)) return InvalidArgument("levels[" + std::to_string(h) + "]: holds a non-finite item");
      if (n > 0 && (v < min || v > max)) {
        return InvalidArgument("levels[" + std::to_string(h) + "]: item " + std::to_string(v) + " outside [min, max]");
      }
    }
    weight += static_cast<uint64_t>(levels[h].size()) << h;
    size += levels[h].size();
  }
  if (weight != n) {
    return InvalidArgument("levels: item weights add up to " + std::to_string(weight) + ", not n = " + std::to_string(n));
  }
  if (n > 0 && !(min <= max)) return InvalidArgument("min: greater than max");
  KllSketch s(k);
  s.n_ = n;
  s.min_ = n > 0 ? min : 0;
  s.max_ = n > 0 ? max : 0;
  s.rank_var_ = rank_variance;
  s.size_ = size;
  s.levels_ = std::move(levels);
  if (s.levels_.empty()) s.levels_.resize(1);
  for (size_t h = 1; h < s.levels_.size(); ++h) std::sort(s.levels_[h].begin(), s.levels_[h].end());
  s.RecomputeCapacities();
  s.Compress();
  return s;
}

}  // namespace ferry::monitoring::drift
