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
// Locating a value is a table lookup: a uniform grid over the knots' range (about 4
// cells per knot) says, per cell, how many knots lie below it; in a cell that holds at
// most one knot (nearly all of them) the slot follows from one comparison with that
// knot, without a search; a crowded cell is searched from its first knot. A handful of
// nanoseconds, against a sort of every window value at every evaluation with a window
// sketch.
// Thread-safety: immutable after Build; shared by every window of a version.
class ReferenceKnots {
 public:
  // REQUIRES: `reference` is numeric. Empty knots when its sketch is empty.
  static std::shared_ptr<const ReferenceKnots> Build(const FeatureSketch& reference);

  // The slot of x: 0 below the first knot, 2i+1 equal to knot i, 2i+2 strictly between
  // knot i and knot i+1 (or above the last knot). REQUIRES: x is not NaN. Inline: it is
  // the whole per-value cost of a drift window.
  size_t Slot(double x) const { return lookup().Slot(x); }
  size_t knot_count() const { return knots_.size() - 2; }
  size_t slots() const { return 2 * knot_count() + 1; }
  double knot(size_t i) const { return knots_[i + 1]; }

  // What Slot reads, in one small value: a loop over many values (WindowRanks) copies it
  // into registers once instead of reading the knots' members at every value.
  struct Lookup {
    double lo, scale, cells;
    const uint32_t* grid;
    const double* k;  // the knots, with k[-1] = -inf and k[knot_count()] = +inf
    const ReferenceKnots* knots;
    size_t Slot(double x) const {
      // The cell of x, unless x is outside the grid (or there is none: cells = 0). The
      // range is checked on the double: converting one out of range is undefined.
      const double t = (x - lo) * scale;
      if (!(t > -1.0 && t < cells)) [[unlikely]]
        return knots->SlotOutsideGrid(x);
      const uint32_t e = grid[static_cast<int64_t>(t)];
      if (e & kCrowded) [[unlikely]]
        return knots->SlotInCrowdedCell(x, e & ~kCrowded);
      // Knots of earlier cells (e of them) are below x, those after k[e] above it: the
      // cell's own knot, if any, is k[e] (else k[e] is above x), and x is below it (slot
      // 2e), equal to it (2e + 1) or above it (2e + 2).
      const double ke = k[e];
      return 2 * size_t{e} + (x >= ke ? 1 : 0) + (x > ke ? 1 : 0);
    }
  };
  Lookup lookup() const { return {lo_, scale_, cells_, grid_.data(), knots_.data() + 1, this}; }

  // Grid cells per knot: enough that a cell of smooth data rarely holds more than one
  // knot, few enough that the grid (4 bytes a cell) stays near the knots' own size.
  static constexpr double kCellsPerKnot = 4.0;

 private:
  friend class WindowRanks;
  std::vector<double> knots_{-HUGE_VAL, HUGE_VAL};  // -inf, the knots, +inf
  // Reference weight of the items <= knot i (so at or after knot i until knot i+1).
  std::vector<uint64_t> cumulative_;
  // The first slot of each histogram bin (edges are knots, so a bin is a run of slots).
  std::vector<uint32_t> bin_first_slot_;
  size_t bins_ = 1;
  // Slot of a value outside the grid's cells (far below the first knot or above the
  // last), or of any value when there is no grid: a binary search.
  size_t SlotOutsideGrid(double x) const;

  // Grid over the knots' range, lo_ the first knot: the cell of x is the integer part of
  // t = (x - lo_)·scale_, and since t never decreases as x grows (rounding included), a
  // knot in an earlier cell is below every value of this one and a knot in a later cell
  // above it. grid_[c] is the number of knots in the cells before c, with kCrowded set
  // when cell c holds two knots or more. cells_ = grid_.size(); 0 when there is no grid
  // (fewer than 2 knots, or no finite range).
  double lo_ = 0, scale_ = 0;
  double cells_ = 0;
  std::vector<uint32_t> grid_;
  static constexpr uint32_t kCrowded = 0x8000'0000u;
  // Slot of x in a crowded cell whose first knot is knot j: a search from there.
  size_t SlotInCrowdedCell(double x, size_t j) const;
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
  // Counts the non-NaN values of first[0], first[stride], ..., first[(n-1)·stride] (a
  // column of row-major rows) at once, without the buffer: a lookup and an increment per
  // value. Returns how many were NaN (not counted: the caller decides what they were).
  // REQUIRES: attached().
  size_t AddStrided(const double* first, size_t n, size_t stride);
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
  // The same, and BinCounts() into *bins from the same sweep over the slots (what an
  // evaluation needs of a window: one pass over its counts instead of two).
  TestResult KsTest(const KllSketch& reference, std::vector<uint64_t>* bins) const;

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
