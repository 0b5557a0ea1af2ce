#include "monitoring/drift/drift_evaluation.h"

#include <algorithm>
#include <numeric>

namespace ferry::monitoring::drift {

std::string_view DriftTestName(DriftTest t) {
  switch (t) {
    case DriftTest::kKs: return "ks";
    case DriftTest::kChi2: return "chi2";
    case DriftTest::kPsi: return "psi";
  }
  return "ks";
}

SortedReference SortReference(const std::vector<const ProfileFeature*>& reference) {
  SortedReference sorted(reference.size());
  for (size_t i = 0; i < reference.size(); ++i)
    if (reference[i]->sketch.kind == FeatureKind::kNumeric) sorted[i] = reference[i]->sketch.quantiles.SortedItems();
  return sorted;
}

DriftEvaluation EvaluateDrift(const std::vector<const ProfileFeature*>& reference,
                              const std::vector<FeatureSketch>& current, const DriftOptions& options,
                              const SortedReference* sorted) {
  DriftEvaluation ev;
  const size_t n = std::min(reference.size(), current.size());
  std::vector<double> p_values;
  std::vector<size_t> p_index;
  for (size_t i = 0; i < n; ++i) {
    const FeatureSketch& ref = reference[i]->sketch;
    const FeatureSketch& cur = current[i];
    FeatureDrift f;
    f.name = reference[i]->name;
    f.kind = ref.kind;
    f.rows = cur.rows;
    f.missing_rate_reference = ref.missing_rate();
    f.missing_rate_current = cur.missing_rate();
    // The current sketch sorted once, for both its histogram and the KS sweep.
    std::vector<std::pair<double, uint64_t>> cur_items;
    const bool ranked = ref.kind == FeatureKind::kNumeric && cur.ranks.attached();
    if (ref.kind == FeatureKind::kNumeric) {
      if (!ranked) cur_items = cur.quantiles.SortedItems();
      f.edges = ref.histogram.edges();
      f.reference_counts = ref.histogram.counts();
      f.test = options.numeric_test;
      // KS on counts takes the bin counts in the same sweep (below).
      if (!ranked) {
        f.current_counts = ref.histogram.CountSorted(cur_items);
      } else if (f.test != DriftTest::kKs) {
        f.current_counts = cur.ranks.BinCounts();
      }
    } else {
      f.categories = ref.categories.Keys();
      f.reference_counts = CategoryVector(ref.categories);
      f.current_counts = CategoryVector(cur.categories);
      f.test = options.categorical_test == DriftTest::kPsi ? DriftTest::kPsi : DriftTest::kChi2;
    }
    TestResult r;
    switch (f.test) {
      case DriftTest::kKs:
        if (ranked) {
          r = cur.ranks.KsTest(ref.quantiles, &f.current_counts);
          break;
        }
        r = sorted && i < sorted->size() ? KsTest(ref.quantiles, (*sorted)[i], cur.quantiles, cur_items)
                                         : KsTest(ref.quantiles, ref.quantiles.SortedItems(), cur.quantiles, cur_items);
        break;
      case DriftTest::kChi2: r = ChiSquareTest(f.reference_counts, f.current_counts); break;
      case DriftTest::kPsi: r = PsiScore(f.reference_counts, f.current_counts); break;
    }
    f.statistic = r.statistic;
    f.p_value = r.p_value;
    if (f.p_value) {
      p_values.push_back(*f.p_value);
      p_index.push_back(ev.features.size());
    } else {
      f.drift = cur.rows > 0 && f.statistic >= options.psi_threshold;
    }
    ev.window_rows = std::max(ev.window_rows, cur.rows);
    ev.features.push_back(std::move(f));
  }
  const std::vector<bool> flags = Significant(p_values, options.alpha, options.correction, &ev.threshold);
  for (size_t j = 0; j < flags.size(); ++j) ev.features[p_index[j]].drift = flags[j];
  for (const auto& f : ev.features) ev.drifted += f.drift ? 1 : 0;
  ev.drift = ev.drifted > 0;
  return ev;
}

std::vector<size_t> RankBySeverity(const DriftEvaluation& evaluation, const DriftOptions& options) {
  std::vector<size_t> order(evaluation.features.size());
  std::iota(order.begin(), order.end(), 0);
  auto severity = [&](const FeatureDrift& f) {
    // p-valued: 1 - p; PSI: its score against the threshold, squashed into [0, 1).
    if (f.p_value) return 1.0 - *f.p_value;
    const double s = f.statistic / options.psi_threshold;
    return s / (1.0 + s);
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const FeatureDrift& fa = evaluation.features[a];
    const FeatureDrift& fb = evaluation.features[b];
    if (fa.drift != fb.drift) return fa.drift;
    return severity(fa) > severity(fb);
  });
  return order;
}

}  // namespace ferry::monitoring::drift
