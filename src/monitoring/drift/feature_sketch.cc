#include "monitoring/drift/feature_sketch.h"

#include <algorithm>
#include <cmath>

#include "monitoring/feature_rows.h"

namespace ferry::monitoring::drift {

std::string_view FeatureKindName(FeatureKind kind) {
  return kind == FeatureKind::kNumeric ? "numeric" : "categorical";
}

FeatureSketch FeatureSketch::EmptyLike(uint32_t k) const {
  FeatureSketch s;
  s.kind = kind;
  s.quantiles = KllSketch(k, KllSketch::kDefaultSeed, kWindowLevel0PerK * k);
  s.histogram = histogram;
  s.histogram.Clear();
  s.categories = CategoryCounts::Frozen(categories.Keys());
  return s;
}

FeatureSketch FeatureSketch::ExactWindow(std::shared_ptr<const ReferenceKnots> knots) const {
  FeatureSketch s = EmptyLike(KllSketch::kMinK);
  if (kind == FeatureKind::kNumeric && knots != nullptr) s.ranks = WindowRanks(std::move(knots));
  return s;
}

void FeatureSketch::AddColumn(const double* first, size_t n, size_t stride) {
  size_t nan = 0;
  if (ranks.attached()) {
    nan = ranks.AddStrided(first, n, stride);
  } else {
    for (size_t i = 0; i < n; ++i) {
      const double x = first[i * stride];
      if (std::isnan(x)) {
        ++nan;
      } else {
        quantiles.Add(x);
      }
    }
  }
  // NaNs are rare: only when there are some is the column read again to tell the
  // absent ones (not rows of this feature) from the missing ones.
  size_t absent = 0;
  if (nan > 0)
    for (size_t i = 0; i < n; ++i) absent += IsAbsentValue(first[i * stride]) ? 1 : 0;
  rows += n - absent;
  missing += nan - absent;
}

void AddRows(std::vector<FeatureSketch>& sketches, const double* rows, size_t n) {
  const size_t width = sketches.size();
  for (size_t start = 0; start < n; start += kRowTile) {
    const size_t tile = std::min(kRowTile, n - start);
    const double* p = rows + start * width;
    for (size_t j = 0; j < width; ++j) sketches[j].AddColumn(p + j, tile, width);
  }
}

void FeatureSketch::AddCategory(std::string_view value) {
  ++rows;
  if (value.empty()) {
    ++missing;
    return;
  }
  categories.Add(value);
}

void FeatureSketch::ResetTo(const FeatureSketch& empty) {
  if (!ranks.attached() || !ranks.SameKnots(empty.ranks) || empty.ranks.count() != 0) {
    *this = empty;
    return;
  }
  kind = empty.kind;
  rows = empty.rows;
  missing = empty.missing;
  quantiles = empty.quantiles;
  histogram = empty.histogram;
  categories = empty.categories;
  ranks.Clear();
}

Status FeatureSketch::Merge(const FeatureSketch& other) {
  if (other.kind != kind) return InvalidArgument("feature: merged sketches are of different kinds");
  if (!ranks.SameKnots(other.ranks)) {
    return InvalidArgument("feature: merged windows are counted against different reference knots");
  }
  FERRY_RETURN_IF_ERROR(histogram.Merge(other.histogram));
  rows += other.rows;
  missing += other.missing;
  quantiles.Merge(other.quantiles);
  ranks.Merge(other.ranks);
  categories.Merge(other.categories);
  return Status::Ok();
}

}  // namespace ferry::monitoring::drift
