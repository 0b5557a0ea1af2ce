#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "monitoring/drift/reference_profile.h"

namespace ferry::monitoring::drift {

// Builds a reference profile from rows of training data in one pass: each value goes
// into its feature's quantile sketch (numeric) or category counts (categorical); Finish
// sets each numeric feature's histogram edges at the sketch's quantiles and counts the
// bins from the sketch, and keeps the `max_categories` most frequent values of each
// categorical feature (the rest become "other").
// Memory: O(features · k) plus up to kCountingCap distinct values per categorical feature.
// Thread-safety: one thread at a time.
class ProfileBuilder {
 public:
  static constexpr uint32_t kCountingCap = 100000;
  struct Options {
    uint32_t sketch_k = 200;      // KLL k of the reference sketches
    uint32_t bins = 10;           // histogram bins per numeric feature (fewer with ties)
    uint32_t max_categories = 64;  // values kept per categorical feature
  };
  explicit ProfileBuilder(Options options) : options_(options) {}

  // Declares a feature (or, with `prediction`, a prediction); returns its slot.
  size_t AddFeature(std::string name, FeatureKind kind, std::string tensor, uint32_t index, bool prediction = false);

  void AddNumber(size_t slot, double x) { features_[slot].sketch.AddNumber(x); }
  void AddCategory(size_t slot, std::string_view v) { features_[slot].sketch.AddCategory(v); }
  void AddMissing(size_t slot) { features_[slot].sketch.AddMissing(); }
  void CountRow() { ++rows_; }
  size_t features() const { return features_.size(); }

  ReferenceProfile Finish(std::string source);

 private:
  Options options_;
  uint64_t rows_ = 0;
  std::vector<ProfileFeature> features_;
  std::vector<bool> prediction_;  // per slot
};

}  // namespace ferry::monitoring::drift
