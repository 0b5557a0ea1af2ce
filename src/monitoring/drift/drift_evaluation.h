#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "monitoring/drift/reference_profile.h"
#include "monitoring/drift/stat_tests.h"

namespace ferry::monitoring::drift {

enum class DriftTest { kKs, kChi2, kPsi };
std::string_view DriftTestName(DriftTest t);  // "ks", "chi2", "psi"

// How a window is judged against the reference (the drift.* settings that are not
// about windows; defaults documented in docs/monitoring.md).
struct DriftOptions {
  double alpha = 0.05;  // family-wise false-alarm rate of one evaluation
  Correction correction = Correction::kBonferroni;
  DriftTest numeric_test = DriftTest::kKs;        // ks | psi (on the histogram bins) | chi2 (bins)
  DriftTest categorical_test = DriftTest::kChi2;  // chi2 | psi
  double psi_threshold = 0.2;                     // PSI at or above it is drift
};

// One feature's verdict, with the reference and current distributions to show: the
// histogram bins (numeric: `edges`, counts per bin) or the categories (categorical:
// `categories`, then "other" as the last count).
struct FeatureDrift {
  std::string name;
  bool prediction = false;
  FeatureKind kind = FeatureKind::kNumeric;
  DriftTest test = DriftTest::kKs;
  double statistic = 0;
  std::optional<double> p_value;
  bool drift = false;
  uint64_t rows = 0;
  double missing_rate_reference = 0, missing_rate_current = 0;
  std::vector<double> edges;
  std::vector<std::string> categories;
  std::vector<uint64_t> reference_counts, current_counts;
};

// One evaluation of a window.
struct DriftEvaluation {
  uint64_t window_rows = 0;
  double threshold = 0;  // the per-feature p-value cut-off after correction
  bool drift = false;    // any feature drifted
  size_t drifted = 0;
  std::vector<FeatureDrift> features;  // inputs, then predictions, in profile order
};

// The references' sketches sorted once (KllSketch::SortedItems per numeric feature; empty
// for categorical ones), parallel to the features: a reference does not change while a
// version is loaded, so an evaluation need not sort it again.
using SortedReference = std::vector<std::vector<std::pair<double, uint64_t>>>;
SortedReference SortReference(const std::vector<const ProfileFeature*>& reference);

// Tests every feature of `current` against its reference (same order and length: the
// profile's features then its predictions) and corrects across all p-valued tests:
// alpha is the chance that an undrifted window raises any p-value alarm (Bonferroni:
// at most alpha; BH controls the false-discovery rate at alpha, which for an undrifted
// stream is the same family-wise rate). PSI verdicts are threshold rules outside the
// correction. A pure function of the sketches. A numeric window made by ExactWindow is
// tested from its counts in the reference's knots (WindowRanks::KsTest, BinCounts); one
// with a quantile sketch is sorted and swept against the reference's sorted items.
// `sorted` (optional, for the latter): SortReference of the same `reference`; without it
// each evaluation sorts the references' sketches itself.
DriftEvaluation EvaluateDrift(const std::vector<const ProfileFeature*>& reference,
                              const std::vector<FeatureSketch>& current, const DriftOptions& options,
                              const SortedReference* sorted = nullptr);

// Features by how strongly they drifted: flagged first, then by p-value ascending (a
// PSI-only feature ranks by score / threshold). What the metrics' top-k keeps.
std::vector<size_t> RankBySeverity(const DriftEvaluation& evaluation, const DriftOptions& options);

}  // namespace ferry::monitoring::drift
