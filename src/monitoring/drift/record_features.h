#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "monitoring/drift/feature_sketch.h"
#include "monitoring/drift/reference_profile.h"

namespace ferry::monitoring::drift {

// One element at `p` of a numeric (or BOOL) tensor of type `t` as a double; NaN for
// BYTES and unknown types.
double ElementAsDouble(DataType t, const std::byte* p);
// A number as a label's text: integral values without a fraction ("2"), others in the
// shortest form that reads back exactly; "" for NaN.
std::string NumberText(double v);

// Where each profile feature's values sit in a request's tensors, and how to read them.
// A feature reads element `index` of every row of its tensor: the tensor named
// `tensor`, else the one named like the feature (one value per row), else the first
// tensor (a model whose one input holds every feature as a column). A tensor's rows are
// its first dimension (one row for a scalar); its row width is the product of the rest.
// Numeric features read FP16/BF16/FP32/FP64/INT*/UINT*/BOOL elements as doubles (BYTES
// parsed as numbers, unparsable ones missing); categorical ones read BYTES as text and
// numbers as their decimal text.
// Thread-safety: stateless.
struct RecordFeatures {
  // Calls `number(feature, row, x)` (numeric features; NaN when missing) or
  // `text(feature, row, value)` (categorical) for every row of every feature the
  // request has, features [0, inputs) from `inputs`, the rest from `outputs`. Returns the
  // rows seen (the largest row count of a feature's tensor); `unmapped` counts features
  // whose tensor or column the request did not have.
  using NumberFn = std::function<void(size_t feature, uint64_t row, double x)>;
  using TextFn = std::function<void(size_t feature, uint64_t row, std::string_view value)>;
  static uint64_t Visit(const std::vector<const ProfileFeature*>& features, size_t inputs,
                        const std::vector<Tensor>& input_tensors, const std::vector<Tensor>& output_tensors,
                        const NumberFn& number, const TextFn& text, uint64_t* unmapped);

  // Adds one request's rows of every feature to `sketches` (parallel to `features`);
  // features [0, inputs) read `inputs`, the rest read `outputs`. Returns the rows added
  // (the largest row count of a feature's tensor); `unmapped` counts features whose
  // tensor or column the request did not have.
  static uint64_t Add(const std::vector<const ProfileFeature*>& features, size_t inputs,
                      const std::vector<Tensor>& input_tensors, const std::vector<Tensor>& output_tensors,
                      std::vector<FeatureSketch>* sketches, uint64_t* unmapped);
};

}  // namespace ferry::monitoring::drift
