#include "monitoring/drift/reference_ranks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "monitoring/drift/feature_sketch.h"

namespace ferry::monitoring::drift {

std::shared_ptr<const ReferenceKnots> ReferenceKnots::Build(const FeatureSketch& reference) {
  auto k = std::make_shared<ReferenceKnots>();
  const std::vector<std::pair<double, uint64_t>> items = reference.quantiles.SortedItems();
  const std::vector<double>& edges = reference.histogram.edges();
  // Merge items and edges (both sorted) into distinct knots; an edge adds no weight.
  size_t i = 0, e = 0;
  uint64_t cum = 0;
  while (i < items.size() || e < edges.size()) {
    const double v = e == edges.size() || (i < items.size() && items[i].first <= edges[e]) ? items[i].first : edges[e];
    while (i < items.size() && items[i].first == v) cum += items[i++].second;
    while (e < edges.size() && edges[e] == v) ++e;
    k->knots_.insert(k->knots_.end() - 1, v);
    k->cumulative_.push_back(cum);
  }
  // Bins are (e_{b-1}, e_b]: knot i is in the bin of the edges below it; the gap after it
  // (no edge inside, since edges are knots) in the bin after every edge <= knot i.
  k->bins_ = edges.size() + 1;
  std::vector<uint32_t> slot_bin(k->slots(), 0);
  for (size_t j = 0; j < k->knot_count(); ++j) {
    const double v = k->knot(j);
    slot_bin[2 * j + 1] = static_cast<uint32_t>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin());
    slot_bin[2 * j + 2] = static_cast<uint32_t>(std::upper_bound(edges.begin(), edges.end(), v) - edges.begin());
  }
  // Bins are non-decreasing in slot order: bin b is the run of slots from its first.
  k->bin_first_slot_.assign(k->bins_, static_cast<uint32_t>(k->slots()));
  for (size_t s = k->slots(); s-- > 0;) k->bin_first_slot_[slot_bin[s]] = static_cast<uint32_t>(s);
  for (size_t b = k->bins_ - 1; b-- > 0;) k->bin_first_slot_[b] = std::min(k->bin_first_slot_[b], k->bin_first_slot_[b + 1]);
  const size_t m = k->knot_count();
  if (m >= 2 && m < kCrowded) {
    const double lo = k->knot(0), hi = k->knot(m - 1);
    const size_t cells = static_cast<size_t>(kCellsPerKnot * static_cast<double>(m));
    if (std::isfinite(hi - lo) && hi > lo) {
      k->lo_ = lo;
      k->scale_ = static_cast<double>(cells) / (hi - lo);
      // hi's t may round up past `cells`; values above hi whose t is below cells_ find
      // every knot below them (and the +inf guard as k[e]).
      k->grid_.assign(cells + 2, 0);
      k->cells_ = static_cast<double>(k->grid_.size());
      // Each knot in the cell Slot computes for it (the same expression, so the same
      // rounding), then the counts summed into "knots in the cells before".
      std::vector<uint32_t> in_cell(k->grid_.size(), 0);
      for (size_t i = 0; i < m; ++i) ++in_cell[static_cast<int64_t>((k->knot(i) - k->lo_) * k->scale_)];
      uint32_t before = 0;
      for (size_t c = 0; c < k->grid_.size(); ++c) {
        k->grid_[c] = before | (in_cell[c] >= 2 ? kCrowded : 0);
        before += in_cell[c];
      }
    }
  }
  return k;
}

size_t ReferenceKnots::SlotOutsideGrid(double x) const {
  const double* k = knots_.data() + 1;
  const size_t m = knot_count();
  if (m == 0 || x < k[0]) return 0;
  const size_t j = static_cast<size_t>(std::upper_bound(k, k + m, x) - k);  // >= 1
  return 2 * j - (k[j - 1] == x ? 1 : 0);
}

size_t ReferenceKnots::SlotInCrowdedCell(double x, size_t j) const {
  // Knots of later cells are above x, and so is the +inf guard: the loop stops.
  const double* k = knots_.data() + 1;
  while (k[j] <= x) ++j;
  return 2 * j - (k[j - 1] == x ? 1 : 0);
}

WindowRanks::WindowRanks(std::shared_ptr<const ReferenceKnots> knots)
    : knots_(std::move(knots)), counts_(knots_->slots(), 0) {
  pending_.reserve(kPending);
}

void WindowRanks::Flush() {
  const ReferenceKnots::Lookup k = knots_->lookup();
  uint64_t* c = counts_.data();
  for (const double x : pending_) ++c[k.Slot(x)];
  count_ += pending_.size();
  pending_.clear();
}

size_t WindowRanks::AddStrided(const double* first, size_t n, size_t stride) {
  const ReferenceKnots::Lookup k = knots_->lookup();
  uint64_t* c = counts_.data();
  size_t nan = 0;
  for (size_t i = 0; i < n; ++i, first += stride) {
    const double x = *first;
    if (std::isnan(x)) {
      ++nan;
      continue;
    }
    ++c[k.Slot(x)];
  }
  count_ += n - nan;
  return nan;
}

void WindowRanks::Merge(const WindowRanks& other) {
  if (other.count() == 0) return;
  const size_t n = std::min(counts_.size(), other.counts_.size());
  uint64_t* c = counts_.data();
  const uint64_t* o = other.counts_.data();
  for (size_t s = 0; s < n; ++s) c[s] += o[s];
  count_ += other.count_;
  for (const double x : other.pending_) ++counts_[knots_->Slot(x)];
  count_ += other.pending_.size();
}

void WindowRanks::Clear() {
  // memset: std::fill is a loop of 8-byte stores here (a step's counts are cleared at
  // every seal).
  if (!counts_.empty()) std::memset(counts_.data(), 0, counts_.size() * sizeof(uint64_t));
  count_ = 0;
  pending_.clear();
}

std::vector<uint64_t> WindowRanks::BinCounts() const {
  std::vector<uint64_t> bins(knots_ ? knots_->bins_ : 1, 0);
  if (!knots_) return bins;
  if (!pending_.empty()) {
    WindowRanks flushed = *this;
    flushed.Flush();
    return flushed.BinCounts();
  }
  // Slots are in value order, so each bin is a run of them.
  const std::vector<uint32_t>& first = knots_->bin_first_slot_;
  for (size_t b = 0; b < bins.size(); ++b) {
    const size_t end = b + 1 < bins.size() ? first[b + 1] : counts_.size();
    uint64_t sum = 0;
    for (size_t s = first[b]; s < end; ++s) sum += counts_[s];
    bins[b] = sum;
  }
  return bins;
}

TestResult WindowRanks::KsTest(const KllSketch& reference) const { return KsTest(reference, nullptr); }

TestResult WindowRanks::KsTest(const KllSketch& reference, std::vector<uint64_t>* bins) const {
  if (!pending_.empty()) {
    WindowRanks flushed = *this;
    flushed.Flush();
    return flushed.KsTest(reference, bins);
  }
  TestResult r;
  if (reference.empty() || count_ == 0 || !knots_) {
    if (bins) *bins = BinCounts();
    r.p_value = 1.0;
    return r;
  }
  // The reference's CDF changes only at knots, the window's only in slots: the largest
  // gap is at a knot (after its equal values) or at the end of the gap after it (all of
  // the gap's values counted). Scaled by na·nb as in the sketch-on-sketch KsTest.
  const double na = static_cast<double>(reference.count()), nb = static_cast<double>(count_);
  // Counts as signed integers: their conversion to double is one instruction.
  const auto* c = reinterpret_cast<const int64_t*>(counts_.data());
  const auto* w = reinterpret_cast<const int64_t*>(knots_->cumulative_.data());
  double gap = na * static_cast<double>(c[0]);  // below the first knot the reference is at 0
  int64_t cb = c[0];
  size_t j = 0;  // the next knot to sweep; cb counts the slots before 2j + 1
  auto sweep_to = [&](size_t end) {
    for (; j < end; ++j) {
      const double ca_nb = static_cast<double>(w[j]) * nb;
      cb += c[2 * j + 1];
      const double at_knot = ca_nb - static_cast<double>(cb) * na;
      cb += c[2 * j + 2];
      const double after_gap = ca_nb - static_cast<double>(cb) * na;
      // after_gap <= at_knot (the window's CDF only grows), so the larger of their absolute
      // values is max(at_knot, -after_gap): one max into the running one per knot.
      gap = std::max(gap, std::max(at_knot, -after_gap));
    }
  };
  if (bins) {
    // Bins are runs of slots, and the count of the slots before a bin's first one is a
    // partial sum the sweep passes: the sweep stops there, notes it (in bins[b], until
    // the differences are taken at the end) and goes on.
    const std::vector<uint32_t>& first = knots_->bin_first_slot_;
    bins->assign(first.size(), 0);
    for (size_t b = 1; b < first.size(); ++b) {
      // Bin b > 0 starts in the gap after its lower edge, knot J (edges are knots): slot
      // 2J + 2, after every slot of the knots before J and knot J's own.
      const size_t knot = first[b] / 2 - 1;
      sweep_to(knot);
      (*bins)[b] = static_cast<uint64_t>(cb + c[2 * knot + 1]);
    }
    for (size_t b = 0; b < first.size(); ++b) {
      const uint64_t next = b + 1 < first.size() ? (*bins)[b + 1] : count_;
      (*bins)[b] = next - (*bins)[b];
    }
  }
  sweep_to(knots_->knot_count());
  return KsResult(gap / (na * nb), KsEffectiveN(reference), nb);
}

}  // namespace ferry::monitoring::drift
