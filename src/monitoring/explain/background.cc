#include "monitoring/explain/background.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace ferry::monitoring::explain {

Result<Matrix> BackgroundFromProfile(const drift::ReferenceProfile& profile, const std::string& tensor, int64_t features,
                                     int64_t rows, uint64_t seed) {
  std::vector<const drift::ProfileFeature*> by_index(static_cast<size_t>(features), nullptr);
  for (size_t f = 0; f < profile.features.size(); ++f) {
    const drift::ProfileFeature& pf = profile.features[f];
    if (!pf.tensor.empty() && pf.tensor != tensor) continue;
    if (static_cast<int64_t>(pf.index) >= features) continue;
    const std::string field = "features[" + std::to_string(f) + "] ('" + pf.name + "')";
    if (pf.sketch.kind != drift::FeatureKind::kNumeric)
      return InvalidArgument("profile " + field + ": a categorical feature cannot be drawn as background for a numeric input");
    if (pf.sketch.quantiles.empty()) return InvalidArgument("profile " + field + ": its quantile sketch is empty");
    by_index[pf.index] = &pf;
  }
  for (int64_t i = 0; i < features; ++i)
    if (by_index[i] == nullptr)
      return InvalidArgument("profile: no feature at index " + std::to_string(i) + " of input '" + tensor +
                             "' (the background needs every one of its " + std::to_string(features) + ")");
  Matrix m;
  m.rows = rows;
  m.cols = features;
  m.values.resize(static_cast<size_t>(rows * features));
  std::mt19937_64 rng(seed);
  std::vector<int64_t> order(static_cast<size_t>(rows));
  for (int64_t i = 0; i < features; ++i) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t j = 0; j < rows; ++j)
      m.values[order[j] * features + i] =
          by_index[i]->sketch.quantiles.Quantile((static_cast<double>(j) + 0.5) / static_cast<double>(rows));
  }
  return m;
}

}  // namespace ferry::monitoring::explain
