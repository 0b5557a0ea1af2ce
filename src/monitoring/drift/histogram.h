#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/result.h"
#include "monitoring/drift/kll_sketch.h"

namespace ferry::monitoring::drift {

// Counts of numeric inputs in fixed bins: edges e_0 < e_1 < ... < e_{m-1} cut the line
// into m + 1 bins (-inf, e_0], (e_0, e_1], ..., (e_{m-1}, +inf). Two histograms with the
// same edges merge by adding counts. A window's histogram takes its edges from the
// reference profile, so reference and current counts line up bin by bin (for PSI and
// for the reference-vs-current view in the monitoring JSON).
// Thread-safety: a value; one thread at a time.
class FixedHistogram {
 public:
  FixedHistogram() : counts_(1, 0) {}
  // INVALID_ARGUMENT when the edges are not finite and strictly increasing.
  static Result<FixedHistogram> WithEdges(std::vector<double> edges);
  // Edges at the sketch's quantiles 1/bins, ..., (bins-1)/bins, equal ones dropped (so a
  // feature with few distinct values gets fewer bins). REQUIRES: bins >= 1.
  static FixedHistogram FromQuantiles(const KllSketch& sketch, uint32_t bins);

  void Add(double x);  // REQUIRES: x is not NaN
  // Counts the sketch's items into these bins (its weights; exact while the sketch is,
  // within its rank error after). Cheaper than Add per value on a hot path: a window
  // sketches values once and bins them only when it is evaluated.
  std::vector<uint64_t> CountFromSketch(const KllSketch& sketch) const;
  // The same from a sketch's SortedItems() (REQUIRES: sorted by value).
  std::vector<uint64_t> CountSorted(const std::vector<std::pair<double, uint64_t>>& items) const;
  // REQUIRES: same edges (INVALID_ARGUMENT otherwise).
  Status Merge(const FixedHistogram& other);
  // Replaces the counts (deserialization); INVALID_ARGUMENT when their number is not
  // edges().size() + 1.
  Status SetCounts(std::vector<uint64_t> counts);
  void Clear();

  const std::vector<double>& edges() const { return edges_; }
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t total() const;

 private:
  std::vector<double> edges_;
  std::vector<uint64_t> counts_;
};

}  // namespace ferry::monitoring::drift
