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

void FeatureSketch::AddNumber(double x) {
  ++rows;
  if (std::isnan(x)) {
    ++missing;
    return;
  }
  quantiles.Add(x);
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
  FERRY_RETURN_IF_ERROR(histogram.Merge(other.histogram));
  rows += other.rows;
  missing += other.missing;
  quantiles.Merge(other.quantiles);
  categories.Merge(other.categories);
  return Status::Ok();
}

}  // namespace ferry::monitoring::drift
