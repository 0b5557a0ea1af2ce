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

}  // namespace
}  // namespace ferry::monitoring::drift
