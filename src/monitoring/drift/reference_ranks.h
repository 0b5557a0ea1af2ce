#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "monitoring/drift/stat_tests.h"

namespace ferry::monitoring::drift {

struct FeatureSketch;

// A numeric reference's knots: the distinct values of its sketch's retained items and of
// its histogram edges, sorted, with the reference's cumulative weight at each. They cut
// the line into slots that a window's values are counted in: below the first knot, equal
// to knot i, strictly between knots i and i+1, above the last. Nothing that a KS test or
// the histogram view of a window needs is lost in that counting: the reference's CDF is
// constant between knots and every histogram edge is a knot, so the window's exact ECDF
// at every knot and at the end of every gap, and its exact bin counts, follow from the
// slot counts (see WindowRanks).
//
// Locating a value is a table lookup (a uniform grid over the knots' range that says
// which knots a cell holds, about 4 cells per knot) plus a search among the few knots of
// one cell: a handful of nanoseconds, against a sort of every window value at every
// evaluation with a window sketch.
// Thread-safety: immutable after Build; shared by every window of a version.
class ReferenceKnots {
 public:
  // REQUIRES: `reference` is numeric. Empty knots when its sketch is empty.
  static std::shared_ptr<const ReferenceKnots> Build(const FeatureSketch& reference);

  // The slot of x: 0 below the first knot, 2i+1 equal to knot i, 2i+2 strictly between
  // knot i and knot i+1 (or above the last knot). REQUIRES: x is not NaN. Inline: it is
  // the whole per-value cost of a drift window.
  size_t Slot(double x) const {
    // The cell of x, unless x is outside the grid: below the first knot's cell, at or
    // above the last knot, or no grid (cells_ = 0). Inside, x > lo_ - 1/scale_ and
    // x < hi_, so 0 <= j <= m - 1 at the start, k[j] exists, and k[-1] is the -inf guard.
    // (The range is checked on the double: converting one out of range is undefined.)
    const double t = (x - lo_) * scale_;
    if (!(t > -1.0 && t < cells_ && x < hi_)) return SlotOutsideGrid(x);
    const auto c = static_cast<size_t>(t);
    const double* k = knots_.data() + 1;
    // A cell holds about 1/kCellsPerKnot knots: two branch-free steps almost always
    // finish; the loops are exact (they also undo a cell index that rounding moved) and
    // rarely run.
    size_t j = grid_[c];
    j += k[j] <= x ? 1 : 0;
    j += k[j] <= x ? 1 : 0;
    while (k[j] <= x) ++j;
    while (k[j - 1] > x) --j;
    return 2 * j - (k[j - 1] == x ? 1 : 0);
  }
  size_t knot_count() const { return knots_.size() - 1; }
  size_t slots() const { return 2 * knot_count() + 1; }
  double knot(size_t i) const { return knots_[i + 1]; }

  // Grid cells per knot: enough that a cell of smooth data rarely holds more than one
  // knot, few enough that the grid (4 bytes a cell) stays near the knots' own size.
  static constexpr double kCellsPerKnot = 4.0;

 private:
  friend class WindowRanks;
  std::vector<double> knots_{-HUGE_VAL};  // -inf, then the knots
  // Reference weight of the items <= knot i (so at or after knot i until knot i+1).
  std::vector<uint64_t> cumulative_;
  // The first slot of each histogram bin (edges are knots, so a bin is a run of slots).
  std::vector<uint32_t> bin_first_slot_;
  size_t bins_ = 1;
  // Slot of a value at or outside the first and last knots, or of any value when there
  // is no grid: a binary search.
  size_t SlotOutsideGrid(double x) const;

  // Grid over [lo_, hi_), the first and last knots: cell c covers lo_ + [c, c+1)/scale_,
  // and grid_[c] is the number of knots below its start (plus an entry for a cell index
  // rounded up to the end). cells_ = 0 when there is no grid: fewer than 2 knots, or no
  // finite range.
  double lo_ = 0, hi_ = 0, scale_ = 0;
  double cells_ = 0;  // grid_.size() - 1: the cell indices a rounded x may take
  std::vector<uint32_t> grid_;
};

// A window's numeric values counted in a reference's slots: what a drift window keeps
// per numeric feature instead of a quantile sketch. An update appends the value to a
// short buffer; a full buffer is counted at once (a slot lookup and an increment per
// value, no sort, ever), so the lookups of one feature run back to back with its knots
// and counts in the closest cache, rather than interleaved with every other feature's
// of a row. Two windows of the same knots merge by adding counts; the window is exact
// however many values it holds, at 8 bytes per slot (about 2 per item the reference
// sketch retains) plus the buffer.
// Thread-safety: a value; one thread at a time.
class WindowRanks {
 public:
  WindowRanks() = default;  // detached: Add must not be called
  explicit WindowRanks(std::shared_ptr<const ReferenceKnots> knots);

  bool attached() const { return knots_ != nullptr; }
  const std::shared_ptr<const ReferenceKnots>& knots() const { return knots_; }
  // REQUIRES: attached(), x is not NaN.
  void Add(double x) {
    pending_.push_back(x);
    if (pending_.size() == kPending) Flush();
  }
  // Counts the buffered values (readers below do it for themselves when needed).
  void Flush();
  // Both detached, or counted against the same knots (one ReferenceKnots object).
  bool SameKnots(const WindowRanks& other) const { return knots_ == other.knots_; }
  // REQUIRES: SameKnots(other).
  void Merge(const WindowRanks& other);
  void Clear();
  uint64_t count() const { return count_ + pending_.size(); }

  // Counts per bin of the reference's histogram (edges().size() + 1 bins), exact.
  std::vector<uint64_t> BinCounts() const;

  // The two-sample KS test of `reference` (the sketch the knots were built from) against
  // this window, as KsTest on two sketches with an exact window: D is the largest gap
  // between the reference sketch's CDF and the window's ECDF, the p-value uses the
  // reference's sketch-corrected effective size and the window's own n.
  TestResult KsTest(const KllSketch& reference) const;

 private:
  // Values a buffer holds before they are counted: enough to run one feature's lookups
  // together, few enough that a wide model's buffers stay in cache (1 KiB each).
  static constexpr size_t kPending = 128;

  std::shared_ptr<const ReferenceKnots> knots_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;           // values counted in counts_
  std::vector<double> pending_;  // values not counted yet (fewer than kPending)
};

}  // namespace ferry::monitoring::drift
