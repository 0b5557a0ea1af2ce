#include "monitoring/drift/record_features.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ferry::monitoring::drift {
namespace {

Tensor Fp32(std::string name, Shape shape, std::vector<float> v) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = DataType::kFp32;
  t.shape = std::move(shape);
  t.Own(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  return t;
}

ProfileFeature Numeric(std::string name, std::string tensor, uint32_t index) {
  ProfileFeature f;
  f.name = std::move(name);
  f.tensor = std::move(tensor);
  f.index = index;
  return f;
}

struct Fixture {
  // a and b: columns 0 and 1 of "x"; c: the tensor named "c"; p: the first output.
  std::vector<ProfileFeature> storage = {Numeric("a", "x", 0), Numeric("b", "x", 1), Numeric("c", "", 0),
                                         Numeric("p", "", 0)};
  std::vector<const ProfileFeature*> features;
  size_t inputs = 3;
  Fixture() {
    for (const auto& f : storage) features.push_back(&f);
  }
  std::vector<FeatureSketch> Sketches() const { return std::vector<FeatureSketch>(features.size()); }
};

TEST(FeatureLayoutTest, MapsByTensorNameFeatureNameOrTheFirstTensor) {
  Fixture fx;
  FeatureLayout layout;
  std::vector<Tensor> in = {Fp32("c", {2}, {7, 8}), Fp32("x", {2, 2}, {1, 2, 3, 4})};
  std::vector<Tensor> out = {Fp32("prob", {2}, {0.5f, 0.25f})};
  const auto& picks = layout.For(fx.features, 4, fx.inputs, in, out);
  EXPECT_EQ(picks, (std::vector<uint32_t>{1, 1, 0, 0}));
  std::vector<FeatureSketch> sketches = fx.Sketches();
  uint64_t unmapped = 0;
  EXPECT_EQ(RecordFeatures::Add(fx.features, fx.inputs, in, out, &sketches, &unmapped, &layout), 2u);
  EXPECT_EQ(unmapped, 0u);
  for (const auto& s : sketches) EXPECT_EQ(s.rows, 2u);
  // A feature whose named tensor is missing is unmapped, not read from another.
  std::vector<Tensor> no_x = {Fp32("c", {1}, {7})};
  const auto& picks2 = layout.For(fx.features, 4, fx.inputs, no_x, out);
  EXPECT_EQ(picks2, (std::vector<uint32_t>{FeatureLayout::kNone, FeatureLayout::kNone, 0, 0}));
}

TEST(FeatureLayoutTest, IsWorkedOutOncePerTensorNamesAndAgainWhenTheyChange) {
  Fixture fx;
  FeatureLayout layout;
  std::vector<Tensor> in = {Fp32("x", {1, 2}, {1, 2}), Fp32("c", {1}, {3})};
  std::vector<Tensor> out = {Fp32("prob", {1}, {0.5f})};
  std::vector<FeatureSketch> sketches = fx.Sketches();
  uint64_t unmapped = 0;
  for (int i = 0; i < 100; ++i) RecordFeatures::Add(fx.features, fx.inputs, in, out, &sketches, &unmapped, &layout);
  EXPECT_EQ(layout.builds(), 1u);
  EXPECT_EQ(unmapped, 0u);
  EXPECT_EQ(sketches[2].rows, 100u);
  // The same names in another order: "c" is now tensor 0, and is read from there.
  std::vector<Tensor> swapped = {Fp32("c", {1}, {9}), Fp32("x", {1, 2}, {1, 2})};
  RecordFeatures::Add(fx.features, fx.inputs, swapped, out, &sketches, &unmapped, &layout);
  EXPECT_EQ(layout.builds(), 2u);
  EXPECT_EQ(unmapped, 0u);
  EXPECT_EQ(layout.For(fx.features, 4, fx.inputs, swapped, out), (std::vector<uint32_t>{1, 1, 0, 0}));
  EXPECT_EQ(layout.builds(), 2u);
  // Another output name rebuilds too (p reads the first output whatever its name).
  std::vector<Tensor> renamed = {Fp32("label", {1}, {1})};
  RecordFeatures::Add(fx.features, fx.inputs, swapped, renamed, &sketches, &unmapped, &layout);
  EXPECT_EQ(layout.builds(), 3u);
  EXPECT_EQ(sketches[3].rows, 102u);
}

// Names are compared a word at a time: a difference in any byte of a long name (the
// first word, the middle, the last, overlapping tail) or a short one is a new layout.
TEST(FeatureLayoutTest, TellsNamesApartWhereverTheyDiffer) {
  Fixture fx;
  FeatureLayout layout;
  const std::vector<Tensor> in = {Fp32("x", {1, 2}, {1, 2}), Fp32("c", {1}, {3})};
  auto out_named = [](std::string name) { return std::vector<Tensor>{Fp32(std::move(name), {1}, {0.5f})}; };
  const std::string base = "probabilities_of_class";  // 22 bytes: two words and a tail
  layout.For(fx.features, 4, fx.inputs, in, out_named(base));
  layout.For(fx.features, 4, fx.inputs, in, out_named(base));
  EXPECT_EQ(layout.builds(), 1u);
  uint64_t builds = 1;
  for (size_t at : {size_t{0}, size_t{7}, size_t{8}, size_t{15}, size_t{16}, base.size() - 1}) {
    std::string other = base;
    other[at] = 'X';
    layout.For(fx.features, 4, fx.inputs, in, out_named(other));
    EXPECT_EQ(layout.builds(), ++builds) << "byte " << at;
    layout.For(fx.features, 4, fx.inputs, in, out_named(base));
    EXPECT_EQ(layout.builds(), ++builds) << "back from byte " << at;
  }
  for (std::string shorter : {"prob", "proc"}) {
    layout.For(fx.features, 4, fx.inputs, in, out_named(shorter));
    EXPECT_EQ(layout.builds(), ++builds) << shorter;
  }
}

TEST(FeatureLayoutTest, VisitGivesTheSameValuesAsAdd) {
  Fixture fx;
  std::vector<Tensor> in = {Fp32("x", {2, 2}, {1, 2, 3, 4}), Fp32("c", {2}, {5, 6})};
  std::vector<Tensor> out = {Fp32("prob", {2}, {0.5f, 0.25f})};
  std::vector<double> seen;
  uint64_t unmapped = 0;
  RecordFeatures::Visit(
      fx.features, fx.inputs, in, out, [&](size_t, uint64_t, double x) { seen.push_back(x); },
      [](size_t, uint64_t, std::string_view) {}, &unmapped);
  EXPECT_EQ(seen, (std::vector<double>{1, 3, 2, 4, 5, 6, 0.5, 0.25}));
}

// AppendRows reads each tensor once and its features from it (the layout's groups):
// features that share a tensor out of order, one past its row width, one with no
// tensor at all and tensors of other types and row counts must land in the same places
// of the block as Visit reports them.
TEST(FeatureLayoutTest, AppendRowsPutsEveryValueWhereVisitSeesIt) {
  std::vector<ProfileFeature> storage = {Numeric("a", "x", 1), Numeric("c", "", 0), Numeric("b", "x", 0),
                                         Numeric("wide", "x", 5), Numeric("gone", "nope", 0),
                                         Numeric("p", "", 0), Numeric("q", "label", 0)};
  std::vector<const ProfileFeature*> features;
  for (const auto& f : storage) features.push_back(&f);
  const size_t inputs = 5;
  Tensor label;
  label.name = "label";
  label.datatype = DataType::kInt64;
  label.shape = {3};
  const std::vector<int64_t> labels = {7, -2, 9};
  label.Own(std::string(reinterpret_cast<const char*>(labels.data()), labels.size() * sizeof(int64_t)));
  const std::vector<Tensor> in = {Fp32("x", {2, 2}, {1, 2, 3, 4}), Fp32("c", {2}, {5, 6})};
  const std::vector<Tensor> out = {Fp32("prob", {2}, {0.5f, 0.25f}), label};

  const size_t n = features.size();
  uint64_t want_unmapped = 0;
  std::vector<double> want(3 * n, AbsentValue());  // 3 rows: the label's
  RecordFeatures::Visit(
      features, inputs, in, out, [&](size_t i, uint64_t r, double x) { want[r * n + i] = x; },
      [](size_t, uint64_t, std::string_view) {}, &want_unmapped);
  EXPECT_EQ(want_unmapped, 2u) << "wide (past x's rows) and gone (no such tensor)";

  FeatureLayout layout;
  FeatureRowBlock block;
  for (int request = 0; request < 2; ++request)  // the second reuses the layout
    RecordFeatures::AppendRows(features, inputs, in, out, &layout, &block);
  EXPECT_EQ(layout.builds(), 1u);
  EXPECT_EQ(block.requests, 2u);
  EXPECT_EQ(block.rows, 6u);
  EXPECT_EQ(block.unmapped, 2 * want_unmapped);
  ASSERT_EQ(block.values.size(), 2 * (1 + want.size()));
  for (size_t request = 0; request < 2; ++request) {
    const double* got = block.values.data() + request * (1 + want.size());
    EXPECT_EQ(got[0], 3.0);
    for (size_t k = 0; k < want.size(); ++k) {
      if (IsAbsentValue(want[k])) EXPECT_TRUE(IsAbsentValue(got[1 + k])) << k;
      else EXPECT_EQ(got[1 + k], want[k]) << k;
    }
  }
}

}  // namespace
}  // namespace ferry::monitoring::drift
