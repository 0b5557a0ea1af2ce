#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"
#include "monitoring/drift/reference_profile.h"
#include "monitoring/explain/shapley.h"

namespace ferry::monitoring::explain {

// The background set of the model-agnostic methods, drawn from a reference profile:
// `rows` rows of the `features` columns of input `tensor` (the profile's features whose
// `tensor` is it, or "" for the model's first input, placed by their `index`). Column i
// holds the quantiles of feature i's sketch at the evenly spaced ranks (j + 0.5) / rows,
// in an order shuffled per column from `seed`: each feature keeps its training
// distribution and the features are drawn independently of each other (the
// interventional Shapley value's assumption).
// INVALID_ARGUMENT naming the profile field for a feature that is missing, categorical
// or has an empty sketch.
Result<Matrix> BackgroundFromProfile(const drift::ReferenceProfile& profile, const std::string& tensor, int64_t features,
                                     int64_t rows, uint64_t seed);

}  // namespace ferry::monitoring::explain
