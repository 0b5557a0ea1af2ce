#include "monitoring/drift/reference_profile.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "monitoring/drift/profile_builder.h"

namespace ferry::monitoring::drift {
namespace {

ReferenceProfile Sample() {
  ProfileBuilder b({.sketch_k = 64, .bins = 8, .max_categories = 2});
  size_t x = b.AddFeature("x", FeatureKind::kNumeric, "", 0);
  size_t c = b.AddFeature("color", FeatureKind::kCategorical, "color", 0);
  size_t p = b.AddFeature("output[0]", FeatureKind::kNumeric, "", 0, true);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> d;
  const char* colors[] = {"red", "green", "blue", "red"};
  for (int i = 0; i < 3000; ++i) {
    b.AddNumber(x, i % 100 == 0 ? std::nan("") : d(rng));
    b.AddCategory(c, colors[i % 4]);
    b.AddNumber(p, d(rng));
    b.CountRow();
  }
  return b.Finish("train.csv");
}

TEST(ReferenceProfile, BuilderCountsMissingBinsAndTopCategories) {
  ReferenceProfile p = Sample();
  ASSERT_EQ(p.features.size(), 2u);
  ASSERT_EQ(p.predictions.size(), 1u);
  EXPECT_EQ(p.rows, 3000u);
  const FeatureSketch& x = p.features[0].sketch;
  EXPECT_EQ(x.missing, 30u);
  EXPECT_EQ(x.histogram.edges().size(), 7u);
  EXPECT_EQ(x.histogram.total(), 2970u);
  const FeatureSketch& c = p.features[1].sketch;
  EXPECT_EQ(c.categories.values().at("red"), 1500u);
  EXPECT_EQ(c.categories.values().size(), 2u);  // capped at 2: red and one of the 750s
  EXPECT_EQ(c.categories.other(), 750u);
}

TEST(ReferenceProfile, JsonRoundTrip) {
  ReferenceProfile p = Sample();
  auto back = ProfileFromJson(ProfileToJson(p));
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->features.size(), 2u);
  EXPECT_EQ(back->source, "train.csv");
  EXPECT_EQ(back->features[1].tensor, "color");
  const auto& a = p.features[0].sketch;
  const auto& b = back->features[0].sketch;
  EXPECT_EQ(b.quantiles.count(), a.quantiles.count());
  EXPECT_EQ(b.quantiles.Quantile(0.25), a.quantiles.Quantile(0.25));
  EXPECT_EQ(b.histogram.edges(), a.histogram.edges());
  EXPECT_EQ(b.histogram.counts(), a.histogram.counts());
  EXPECT_EQ(back->predictions[0].name, "output[0]");

  const auto path = std::filesystem::temp_directory_path() / "ferry_profile_test.json";
  ASSERT_TRUE(WriteProfile(path, p).ok());
  auto read = ReadProfile(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(read->rows, 3000u);
  std::filesystem::remove(path);
}

void ExpectError(const std::string& json, const std::string& want) {
  auto r = ProfileFromJson(json);
  ASSERT_FALSE(r.ok()) << json;
  EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status().message();
}

TEST(ReferenceProfile, MalformedProfilesNameTheField) {
  ExpectError("{", "not JSON");
  ExpectError(R"({"format":"other","version":1})", "format: expected \"ferry-profile\"");
  ExpectError(R"({"format":"ferry-profile","version":9,"rows":1,"features":[]})", "version: 9 is not supported");
  ExpectError(R"({"format":"ferry-profile","version":1,"rows":1})", "features: missing");
  ExpectError(R"({"format":"ferry-profile","version":1,"rows":1,"features":[{"name":"a","type":"text"}]})",
              "features[0].type: 'text'");
  ExpectError(R"({"format":"ferry-profile","version":1,"rows":1,"features":[{"name":"a","type":"numeric",
      "tensor":"","index":0,"rows":1,"missing":0}]})",
              "features[0].sketch: missing");
  ExpectError(R"({"format":"ferry-profile","version":1,"rows":1,"features":[{"name":"a","type":"numeric",
      "tensor":"","index":0,"rows":2,"missing":0,"sketch":{"kind":"kll","k":8,"n":2,"min":0,"max":1,
      "rank_variance":0,"levels":[[0,"x"]]}}]})",
              "features[0].sketch.levels[0][1]: expected a number");
  ExpectError(R"({"format":"ferry-profile","version":1,"rows":1,"features":[{"name":"a","type":"numeric",
      "tensor":"","index":0,"rows":3,"missing":0,"sketch":{"kind":"kll","k":8,"n":3,"min":0,"max":1,
      "rank_variance":0,"levels":[[0,1]]}}]})",
              "features[0].sketch.levels: item weights add up to 2, not n = 3");
  ExpectError(R"({"format":"ferry-profile","version":1,"rows":1,"features":[{"name":"a","type":"numeric",
      "tensor":"","index":0,"rows":2,"missing":0,"sketch":{"kind":"kll","k":8,"n":2,"min":0,"max":1,
      "rank_variance":0,"levels":[[0,1]]},"histogram":{"edges":[0.5],"counts":[1]}}]})",
              "features[0].histogram.counts: 1 counts for 1 edges");
  ExpectError(R"({"format":"ferry-profile","version":1,"rows":1,"features":[{"name":"c","type":"categorical",
      "tensor":"","index":0,"rows":2,"missing":0,"categories":{"cap":4,"values":{"a":-1},"other":0}}]})",
              "features[0].categories.values.a: expected a non-negative integer");
  auto missing = ReadProfile("/nonexistent/profile.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/profile.json"), std::string::npos);
}

}  // namespace
}  // namespace ferry::monitoring::drift
