#include "monitoring/drift/profile_builder.h"

#include <algorithm>

namespace ferry::monitoring::drift {

size_t ProfileBuilder::AddFeature(std::string name, FeatureKind kind, std::string tensor, uint32_t index,
                                  bool prediction) {
  ProfileFeature f;
  f.name = std::move(name);
  f.tensor = std::move(tensor);
  f.index = index;
  f.sketch.kind = kind;
  f.sketch.quantiles = KllSketch(options_.sketch_k);
  f.sketch.categories = CategoryCounts(kCountingCap);
  features_.push_back(std::move(f));
  prediction_.push_back(prediction);
  return features_.size() - 1;
}

ReferenceProfile ProfileBuilder::Finish(std::string source) {
  ReferenceProfile p;
  p.rows = rows_;
  p.source = std::move(source);
  for (size_t i = 0; i < features_.size(); ++i) {
    ProfileFeature f = std::move(features_[i]);
    FeatureSketch& s = f.sketch;
    if (s.kind == FeatureKind::kNumeric) {
      s.histogram = FixedHistogram::FromQuantiles(s.quantiles, std::max<uint32_t>(1, options_.bins));
      // The bins are counted from the sketch's items: exact while the sketch is, and
      // within its rank error after that.
      (void)s.histogram.SetCounts(s.histogram.CountFromSketch(s.quantiles));
      s.categories = CategoryCounts();
    } else {
      s.categories.Trim(options_.max_categories);
      s.quantiles = KllSketch(KllSketch::kMinK);
    }
    (prediction_[i] ? p.predictions : p.features).push_back(std::move(f));
  }
  features_.clear();
  prediction_.clear();
  return p;
}

}  // namespace ferry::monitoring::drift
