#include "monitoring/outliers/outlier_score.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "monitoring/drift/profile_builder.h"

namespace ferry::monitoring::outliers {
namespace {

using drift::FeatureKind;
using drift::ProfileBuilder;

FeatureValue Num(double x) { return {x, {}, false}; }
FeatureValue Cat(std::string_view v) { return {0, v, false}; }

// 0, 1, ..., 999 once each, in a sketch large enough to be exact; and a category with
// counts red 500, green 300, blue 200.
drift::ReferenceProfile Known() {
  ProfileBuilder b({.sketch_k = 4096, .bins = 8, .max_categories = 10});
  size_t x = b.AddFeature("x", FeatureKind::kNumeric, "", 0);
  size_t c = b.AddFeature("color", FeatureKind::kCategorical, "", 1);
  for (int i = 0; i < 1000; ++i) {
    b.AddNumber(x, i);
    b.AddCategory(c, i < 500 ? "red" : i < 800 ? "green" : "blue");
    b.CountRow();
  }
  return b.Finish("known");
}

TEST(OutlierScorer, NumericPValueIsTheTwoSidedEmpiricalTail) {
  auto s = OutlierScorer::Create(Known());
  ASSERT_TRUE(s.ok()) << s.status().message();
  // P(X <= 0) = (1 + 1) / 1001, two-sided: twice that.
  EXPECT_DOUBLE_EQ(s->FeatureP(0, Num(0)), 4.0 / 1001);
  EXPECT_DOUBLE_EQ(s->FeatureP(0, Num(9)), 2 * 11.0 / 1001);
  EXPECT_DOUBLE_EQ(s->FeatureP(0, Num(990)), 2 * 11.0 / 1001);  // 990..999 are >= it
  EXPECT_DOUBLE_EQ(s->FeatureP(0, Num(989.5)), 2 * 11.5 / 1001);  // between two: interpolated
  EXPECT_DOUBLE_EQ(s->FeatureP(0, Num(500)), 1.0);
  // Past the max: the max's 4/1001 decaying as a Laplace tail of scale IQR / (2 ln 2).
  const double iqr = 749.0 - 249.0;  // the sketch's quartiles of 0..999, within one item
  const double scale = iqr / (2 * std::log(2.0));
  EXPECT_NEAR(s->FeatureP(0, Num(999 + scale * std::log(10.0))), 4.0 / 1001 / 10, 4.0 / 1001 / 10 * 0.01);
  EXPECT_LT(s->FeatureP(0, Num(-1e6)), 1e-300);
  EXPECT_DOUBLE_EQ(s->FeatureP(0, Num(std::nan(""))), 1.0 / 1001);  // the reference had no missing
}

TEST(OutlierScorer, CategoricalPValueIsTheShareOfAtMostAsFrequentCategories) {
  auto s = OutlierScorer::Create(Known());
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->FeatureP(1, Cat("red")), 1.0);
  EXPECT_DOUBLE_EQ(s->FeatureP(1, Cat("green")), 501.0 / 1001);
  EXPECT_DOUBLE_EQ(s->FeatureP(1, Cat("blue")), 201.0 / 1001);
  EXPECT_DOUBLE_EQ(s->FeatureP(1, Cat("purple")), 1.0 / 1001) << "never seen";
}

TEST(OutlierScorer, RowCombinesFeaturesWithBonferroni) {
  auto s = OutlierScorer::Create(Known());
  ASSERT_TRUE(s.ok());
  auto r = s->Compute({Num(500), Cat("blue")});
  EXPECT_DOUBLE_EQ(r.p_value, 2 * 201.0 / 1001);
  EXPECT_EQ(r.feature, 1u);
  EXPECT_NEAR(r.score, -std::log10(2 * 201.0 / 1001), 1e-12);
  r = s->Compute({Num(500), Cat("red")});
  EXPECT_EQ(r.p_value, 1.0);
  EXPECT_EQ(r.score, 0.0);
  r = s->Compute({Num(1e9), Cat("red")});
  EXPECT_EQ(r.feature, 0u);
  EXPECT_GT(r.score, 300) << "far out: tiny p, a finite score";
}

TEST(OutlierScorer, EmptyProfileIsRefused) {
  drift::ReferenceProfile p;
  EXPECT_EQ(OutlierScorer::Create(p).status().message(), "the reference profile has no input features");
}

// Reference: 20000 rows of 4 features (three standard normal, one exponential), in
// sketches of the default size. Fresh rows of the same distribution: the share flagged
// at threshold t must stay at or below t (Bonferroni; the sketch's rank error shows as a
// little slack). Seeds fixed, so the numbers are the same every run.
TEST(OutlierScorer, FalsePositiveRateOnReferenceLikeRowsStaysBelowTheThreshold) {
  ProfileBuilder b({});
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  std::exponential_distribution<double> expo(1.0);
  for (int j = 0; j < 3; ++j) b.AddFeature("n" + std::to_string(j), FeatureKind::kNumeric, "", j);
  b.AddFeature("e", FeatureKind::kNumeric, "", 3);
  for (int i = 0; i < 20000; ++i) {
    for (size_t j = 0; j < 3; ++j) b.AddNumber(j, normal(rng));
    b.AddNumber(3, expo(rng));
    b.CountRow();
  }
  auto s = OutlierScorer::Create(b.Finish("normal"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  std::mt19937_64 fresh(12);
  const int rows = 200000;
  int flagged_01 = 0, flagged_001 = 0, shifted_flagged = 0;
  std::vector<FeatureValue> row(4);
  for (int i = 0; i < rows; ++i) {
    for (size_t j = 0; j < 3; ++j) row[j] = Num(normal(fresh));
    row[3] = Num(expo(fresh));
    const double p = s->Compute(row).p_value;
    flagged_01 += p < 0.01;
    flagged_001 += p < 0.001;
    if (i < 10000) {  // the same row with one feature 6 sigma out
      row[i % 3] = Num(row[i % 3].number + (i % 2 ? 6 : -6));
      shifted_flagged += s->Compute(row).p_value < 0.01;
    }
  }
  const double fpr_01 = static_cast<double>(flagged_01) / rows, fpr_001 = static_cast<double>(flagged_001) / rows;
  std::printf("measured false-positive rate: %.5f at threshold 0.01, %.5f at 0.001; 6-sigma rows flagged: %.4f\n",
              fpr_01, fpr_001, shifted_flagged / 10000.0);
  EXPECT_LE(fpr_01, 0.011);
  EXPECT_LE(fpr_001, 0.0013);
  EXPECT_GT(fpr_01, 0.004) << "Bonferroni over 4 features is conservative, not useless";
  EXPECT_GE(shifted_flagged, 9800);
}

}  // namespace
}  // namespace ferry::monitoring::outliers
