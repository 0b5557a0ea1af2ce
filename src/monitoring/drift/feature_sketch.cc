#include "monitoring/drift/feature_sketch.h"

#include <cmath>

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

void FeatureSketch::AddCategory(std::string_view value) {
  ++rows;
  if (value.empty()) {
    ++missing;
    return;
  }
  categories.Add(value);
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
