#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "monitoring/feature_rows.h"
#include "monitoring/drift/feature_sketch.h"
#include "monitoring/drift/reference_profile.h"

namespace ferry::monitoring::drift {

// One element at `p` of a numeric (or BOOL) tensor of type `t` as a double; NaN for
// BYTES and unknown types.
double ElementAsDouble(DataType t, const std::byte* p);
// A number as a label's text: integral values without a fraction ("2"), others in the
// shortest form that reads back exactly; "" for NaN.
std::string NumberText(double v);

// Which tensor each feature of a version reads, worked out from the tensors' names (the
// rule below) once and reused for every request whose tensors have the same names in the
// same order, which is every request of a model that declares its inputs and outputs;
// other requests have it worked out again. Saves comparing every feature's name with
// every tensor's on each record.
// A layout is for one feature list (a version's): the features are not part of what
// For compares.
// Thread-safety: none; one per version, used under the version's lock.
class FeatureLayout {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;  // the request has no tensor for it
  // For features [0, n): the index of its tensor among `input_tensors` (features
  // [0, inputs)) or `output_tensors` (the rest), or kNone.
  const std::vector<uint32_t>& For(const std::vector<const ProfileFeature*>& features, size_t n, size_t inputs,
                                   const std::vector<Tensor>& input_tensors, const std::vector<Tensor>& output_tensors);
  // How often the mapping was worked out (for tests).
  uint64_t builds() const { return builds_; }

  // The same mapping by tensor, worked out with it, for a reader that lays each tensor
  // out once and then reads its features (RecordFeatures::AppendRows): each tensor some
  // feature reads, with the columns (feature, element index) read from it. Valid after
  // For, until the next For.
  struct Column {
    uint32_t feature;  // in the features given to For
    uint64_t index;    // the feature's element in each row
  };
  struct Group {
    bool input;            // of the input tensors, else of the output ones
    uint32_t tensor;       // its index there
    uint32_t begin, end;   // its columns in columns()
    uint64_t min_index;    // the least of their indices
  };
  const std::vector<Group>& groups() const { return groups_; }
  const std::vector<Column>& columns() const { return columns_; }
  // Features that have no tensor (kNone).
  uint64_t unpicked() const { return unpicked_; }

 private:
  static bool SameNames(const std::vector<std::string>& names, const std::vector<Tensor>& tensors);

  bool built_ = false;
  size_t n_ = 0;
  std::vector<std::string> input_names_, output_names_;  // of the tensors picks_ was built for
  std::vector<uint32_t> picks_;
  std::vector<Group> groups_;
  std::vector<Column> columns_;
  uint64_t unpicked_ = 0;
  uint64_t builds_ = 0;
};

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
  // `layout` (the version's, kept between its records) maps the features to tensors.
  static uint64_t Add(const std::vector<const ProfileFeature*>& features, size_t inputs,
                      const std::vector<Tensor>& input_tensors, const std::vector<Tensor>& output_tensors,
                      std::vector<FeatureSketch>* sketches, uint64_t* unmapped, FeatureLayout* layout);

  // Appends one request's values of every feature to `block` in FeatureRowBlock's layout
  // (R, then R rows of features.size() values; kAbsentValue where a feature has no value
  // in a row, NaN where it is missing) and counts the request, its rows and its unmapped
  // features there; what Add would add, to be added later (DriftMonitor::ConsumeRows).
  // REQUIRES: every feature numeric (a categorical one reads text, which a block does
  // not hold). `layout` is the caller's (one per thread).
  static void AppendRows(const std::vector<const ProfileFeature*>& features, size_t inputs,
                         const std::vector<Tensor>& input_tensors, const std::vector<Tensor>& output_tensors,
                         FeatureLayout* layout, FeatureRowBlock* block);
};

}  // namespace ferry::monitoring::drift
