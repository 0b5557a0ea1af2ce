#include "monitoring/drift/histogram.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace ferry::monitoring::drift {

Result<FixedHistogram> FixedHistogram::WithEdges(std::vector<double> edges) {
  for (size_t i = 0; i < edges.size(); ++i) {
    if (!std::isfinite(edges[i])) return InvalidArgument("edges[" + std::to_string(i) + "]: not a finite number");
    if (i > 0 && !(edges[i] > edges[i - 1])) {
      return InvalidArgument("edges[" + std::to_string(i) + "]: not greater than the edge before it");
    }
  }
  FixedHistogram h;
  h.counts_.assign(edges.size() + 1, 0);
  h.edges_ = std::move(edges);
  return h;
}

FixedHistogram FixedHistogram::FromQuantiles(const KllSketch& sketch, uint32_t bins) {
  std::vector<double> edges;
  if (!sketch.empty()) {
    for (uint32_t j = 1; j < bins; ++j) {
      const double e = sketch.Quantile(static_cast<double>(j) / bins);
      // The top edge equal to the maximum would leave the last bin empty by construction.
      if (e >= sketch.max()) break;
      if (edges.empty() || e > edges.back()) edges.push_back(e);
    }
  }
  FixedHistogram h;
  h.counts_.assign(edges.size() + 1, 0);
  h.edges_ = std::move(edges);
  return h;
}

void FixedHistogram::Add(double x) {
  const size_t bin = std::lower_bound(edges_.begin(), edges_.end(), x) - edges_.begin();
  ++counts_[bin];
}

std::vector<uint64_t> FixedHistogram::CountFromSketch(const KllSketch& sketch) const {
  return CountSorted(sketch.SortedItems());
}

std::vector<uint64_t> FixedHistogram::CountSorted(const std::vector<std::pair<double, uint64_t>>& items) const {
  std::vector<uint64_t> counts(edges_.size() + 1, 0);
  // One sweep: items and edges are both sorted; bin b is (e_{b-1}, e_b].
  size_t bin = 0;
  for (const auto& [v, w] : items) {
    while (bin < edges_.size() && v > edges_[bin]) ++bin;
    counts[bin] += w;
  }
  return counts;
}

Status FixedHistogram::Merge(const FixedHistogram& other) {
  if (other.edges_ != edges_) return InvalidArgument("histogram: merged histograms have different edges");
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  return Status::Ok();
}

Status FixedHistogram::SetCounts(std::vector<uint64_t> counts) {
  if (counts.size() != edges_.size() + 1) {
    return InvalidArgument("counts: " + std::to_string(counts.size()) + " counts for " +
                           std::to_string(edges_.size()) + " edges (want edges + 1)");
  }
  counts_ = std::move(counts);
  return Status::Ok();
}

void FixedHistogram::Clear() { std::fill(counts_.begin(), counts_.end(), 0); }

uint64_t FixedHistogram::total() const { return std::accumulate(counts_.begin(), counts_.end(), uint64_t{0}); }

}  // namespace ferry::monitoring::drift
