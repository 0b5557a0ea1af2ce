#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry::monitoring::drift {

// Counts of a categorical feature's values, at most `cap` distinct ones; values past the
// cap are counted together as "other". A reference keeps its top `cap` values (Trim);
// a window's counts are keyed by the reference's values (Frozen), so a value the
// reference never saw lands in "other" and the two line up for chi² and PSI. Memory is
// bounded by the cap whatever the stream sends.
// Thread-safety: a value; one thread at a time.
class CategoryCounts {
 public:
  static constexpr uint32_t kDefaultCap = 64;

  explicit CategoryCounts(uint32_t cap = kDefaultCap) : cap_(cap) {}
  // Counts keyed by exactly `keys` (zero counts); every other value goes to "other".
  static CategoryCounts Frozen(const std::vector<std::string>& keys);

  void Add(std::string_view value, uint64_t n = 1);
  void AddOther(uint64_t n) { other_ += n; }
  // Adds `other`'s counts: its values that this one has or still has room for, the rest
  // (and its "other") into "other".
  void Merge(const CategoryCounts& other);
  // Keeps the `cap` most frequent values (ties by value), folding the rest into "other".
  void Trim(uint32_t cap);
  void Clear();

  const std::map<std::string, uint64_t, std::less<>>& values() const { return counts_; }
  uint64_t other() const { return other_; }
  uint64_t total() const;
  uint32_t cap() const { return cap_; }
  std::vector<std::string> Keys() const;

 private:
  uint32_t cap_;
  std::map<std::string, uint64_t, std::less<>> counts_;
  uint64_t other_ = 0;
};

}  // namespace ferry::monitoring::drift
