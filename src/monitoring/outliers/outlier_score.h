#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "monitoring/drift/reference_profile.h"

namespace ferry::monitoring::outliers {

// One feature's value in a row: a number (numeric features; NaN = missing) or a text
// (categorical features; "" = missing).
struct FeatureValue {
  double number = 0;
  std::string_view text;
  bool missing = false;
};

// How unusual one row is against a model's reference profile.
//
// Per feature, a p-value: how often a reference row is at least as extreme.
//  - numeric: two-sided, from the reference's sketch (a sorted table of knots built
//    once: the sketch's items at their mid-ranks, linearly interpolated, between the
//    exact min and max): p = min(1, 2·min(P(X <= x), P(X >= x))) with the empirical
//    (count + 1)/(n + 1) form, so it is never 0 and is a valid p-value for
//    reference-like rows. Past the reference's min or max the tail is extended as a
//    Laplace tail with the reference's spread (scale IQR / (2 ln 2)), so a value far
//    beyond anything seen gets a p far below 1/n (heavier than a normal tail, so the
//    extension errs towards "not an outlier").
//  - categorical: the share of reference rows whose category is at most as frequent
//    as this one ((count + 1)/(n + 1) form); a category the reference never saw gets
//    1/(n + 1).
//  - missing: the reference's share of missing values ((missing + 1)/(rows + 1)).
// Combined: Bonferroni over the d features, p_row = min(1, d·min_j p_j). Whatever the
// features' dependence, a reference-like row has p_row < t with probability <= t (the
// union bound), so the false-positive rate at threshold t is at most t; the test
// measures it. The score is -log10(p_row): 0 for an ordinary row, 3 for one-in-a-
// thousand, larger for rarer.
// Thread-safety: immutable after Create; Score may run on many threads at once.
class OutlierScorer {
 public:
  // The scorer of a profile's input features (not its predictions). INVALID_ARGUMENT
  // when the profile has no features, or a numeric feature has no values.
  static Result<OutlierScorer> Create(const drift::ReferenceProfile& profile);

  struct Score {
    double p_value = 1;    // p_row above
    double score = 0;      // -log10(p_value)
    size_t feature = 0;    // the feature with the smallest p
  };
  // REQUIRES: values.size() == features().
  Score Compute(const std::vector<FeatureValue>& values) const;
  // One feature's p-value (above).
  double FeatureP(size_t feature, const FeatureValue& value) const;

  size_t features() const { return features_.size(); }
  const std::string& feature_name(size_t i) const { return features_[i].name; }
  // The smallest p_row this profile can give a row inside the reference's range; a
  // threshold below it flags only rows past the range.
  double min_inside_p() const;

 private:
  struct Numeric {
    std::vector<double> values;    // knots of the CDF: min, the sketch's items, max (sorted)
    std::vector<double> ranks;     // their mid-ranks (0.5 ... n - 0.5)
    double n = 0;                  // non-missing reference values
    double min = 0, max = 0;
    double tail_scale = 1;         // Laplace scale past min / max
  };
  struct Categorical {
    // Per known category: its count and the share of rows in categories at most as
    // frequent, as p.
    std::vector<std::pair<std::string, double>> p_by_value;  // sorted by value
    double unseen_p = 1;
  };
  struct Feature {
    std::string name;
    drift::FeatureKind kind = drift::FeatureKind::kNumeric;
    double missing_p = 1;
    Numeric numeric;
    Categorical categorical;
  };

  double NumericP(const Numeric& f, double x) const;
  double CategoricalP(const Categorical& f, std::string_view v) const;

  std::vector<Feature> features_;
  double min_rows_ = 0;
};

}  // namespace ferry::monitoring::outliers
