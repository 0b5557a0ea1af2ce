#include "monitoring/drift/category_counts.h"

#include <algorithm>

namespace ferry::monitoring::drift {

CategoryCounts CategoryCounts::Frozen(const std::vector<std::string>& keys) {
  CategoryCounts c(static_cast<uint32_t>(keys.size()));
  for (const auto& k : keys) c.counts_.emplace(k, 0);
  return c;
}

void CategoryCounts::Add(std::string_view value, uint64_t n) {
  auto it = counts_.find(value);
  if (it != counts_.end()) {
    it->second += n;
  } else if (counts_.size() < cap_) {
    counts_.emplace(std::string(value), n);
  } else {
    other_ += n;
  }
}

void CategoryCounts::Merge(const CategoryCounts& other) {
  for (const auto& [v, n] : other.counts_) Add(v, n);
  other_ += other.other_;
}

void CategoryCounts::Trim(uint32_t cap) {
  cap_ = cap;
  if (counts_.size() <= cap) return;
  std::vector<std::pair<std::string, uint64_t>> all(counts_.begin(), counts_.end());
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  counts_.clear();
  for (size_t i = 0; i < all.size(); ++i) {
    if (i < cap) {
      counts_.emplace(std::move(all[i].first), all[i].second);
    } else {
      other_ += all[i].second;
    }
  }
}

void CategoryCounts::Clear() {
  for (auto& [v, n] : counts_) n = 0;
  other_ = 0;
}

uint64_t CategoryCounts::total() const {
  uint64_t t = other_;
  for (const auto& [v, n] : counts_) t += n;
  return t;
}

std::vector<std::string> CategoryCounts::Keys() const {
  std::vector<std::string> keys;
  keys.reserve(counts_.size());
  for (const auto& [v, n] : counts_) keys.push_back(v);
  return keys;
}

}  // namespace ferry::monitoring::drift
