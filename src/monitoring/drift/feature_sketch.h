#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "monitoring/drift/category_counts.h"
#include "monitoring/drift/histogram.h"
#include "monitoring/drift/kll_sketch.h"
#include "monitoring/drift/reference_ranks.h"

namespace ferry::monitoring::drift {

enum class FeatureKind { kNumeric, kCategorical };
std::string_view FeatureKindName(FeatureKind kind);  // "numeric", "categorical"

// Everything ferry keeps about one feature over a set of rows (a reference data set or
// a window of requests): the row count, the missing (NaN or empty) count and, by kind,
// a quantile sketch plus a fixed-edge histogram (numeric) or capped category counts
// (categorical). Two sketches of the same feature with the same histogram edges merge
// into the sketch of the union of their rows.
// Thread-safety: a value; one thread at a time.
struct FeatureSketch {
  FeatureKind kind = FeatureKind::kNumeric;
  uint64_t rows = 0;     // values seen, missing ones included
  uint64_t missing = 0;  // NaN (numeric) or empty (categorical)
  KllSketch quantiles;   // numeric only
  // Numeric only: the bin edges, and (in a profile) the counts. AddNumber does not bin;
  // counts come from the sketch (FixedHistogram::CountFromSketch) when they are needed.
  FixedHistogram histogram;
  CategoryCounts categories;  // categorical only
  // Numeric drift windows only (ExactWindow): the values counted in the reference's
  // knots. When attached, AddNumber counts here and `quantiles` stays empty.
  WindowRanks ranks;

  // A window sketch's level 0 holds this many raw values per unit of k before it first
  // compacts (KllSketch's level0_capacity): a window's rows are appended, not sketched
  // one by one, and a window of up to 4·k rows is exact.
  static constexpr uint32_t kWindowLevel0PerK = 4;

  // An empty sketch of the same kind whose histogram edges and category keys are this
  // one's (what a window of the live stream is compared against): quantiles of the given
  // k with a level 0 of kWindowLevel0PerK·k values.
  FeatureSketch EmptyLike(uint32_t k) const;
  // An empty window like EmptyLike whose numeric values are counted, exactly, in
  // `knots` (ReferenceKnots::Build of this sketch; ignored for a categorical one): what
  // DriftMonitor's windows are. Cheaper per value than a sketch and never sorted.
  FeatureSketch ExactWindow(std::shared_ptr<const ReferenceKnots> knots) const;

  // NaN counts as missing. Inline: a drift window's per-value path.
  void AddNumber(double x) {
    ++rows;
    if (std::isnan(x)) {
      ++missing;
    } else if (ranks.attached()) {
      ranks.Add(x);
    } else {
      quantiles.Add(x);
    }
  }
  // The values first[0], first[stride], ..., first[(n-1)·stride]: one feature's column of
  // n row-major rows (a FeatureRowBlock's). Each as AddNumber, except kAbsentValue (the
  // row has no value for this feature: not counted at all). For an exact window the
  // values are counted at once (WindowRanks::AddStrided), without AddNumber's buffer.
  void AddColumn(const double* first, size_t n, size_t stride);
  void AddCategory(std::string_view value);  // "" counts as missing
  void AddMissing() {
    ++rows;
    ++missing;
  }
  // REQUIRES: same kind, histogram edges and knots (INVALID_ARGUMENT otherwise).
  Status Merge(const FeatureSketch& other);
  // Becomes a copy of `empty` (an EmptyLike or ExactWindow sketch), keeping its own
  // window counts' buffer when both count against the same knots (cleared, not copied).
  void ResetTo(const FeatureSketch& empty);

  double missing_rate() const { return rows == 0 ? 0.0 : static_cast<double>(missing) / rows; }
};

// Adds n rows of sketches.size() values each (row-major, as a FeatureRowBlock holds a
// request's rows) to sketches[0..]: AddColumn per feature, over tiles of kRowTile rows.
// A feature's lookups land at random in its grid, knots and counts (about 30 KB for a
// k = 200 reference), which the features before it have pushed out of the closest
// cache; a long tile pays for bringing them back over many values (the column's own
// reads are strided, which the prefetcher follows). Same counts as AddNumber of every
// value that is not kAbsentValue; worth it from a few rows on (DriftMonitor: a request
// of at least kRowTileMin rows).
void AddRows(std::vector<FeatureSketch>& sketches, const double* rows, size_t n);
// Measured (cachegrind, d = 64, 1000-row windows): 128 rows a tile miss the L1 data
// cache 3 times per value, 1024 rows 1.9 times (update rate in time: 1.2-1.35x).
inline constexpr size_t kRowTile = 1024;
inline constexpr size_t kRowTileMin = 16;

}  // namespace ferry::monitoring::drift
