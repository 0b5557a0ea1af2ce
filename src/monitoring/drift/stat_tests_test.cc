#include "monitoring/drift/stat_tests.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace ferry::monitoring::drift {
namespace {

// Expected values from scipy 1.17 (special.kolmogorov, stats.chi2.sf,
// stats.chi2_contingency(correction=False), stats.ks_2samp(method='asymp')).
TEST(StatTests, KolmogorovSurvivalMatchesScipy) {
  EXPECT_NEAR(KolmogorovSurvival(1.0), 0.26999967167735456, 1e-12);
  EXPECT_NEAR(KolmogorovSurvival(0.5), 0.9639452436648751, 1e-12);
  EXPECT_NEAR(KolmogorovSurvival(1.36), 0.049485876755377876, 1e-12);
  EXPECT_NEAR(KolmogorovSurvival(2.0), 0.0006709252557796953, 1e-14);
  EXPECT_EQ(KolmogorovSurvival(0.0), 1.0);
}

TEST(StatTests, ChiSquareSurvivalMatchesScipy) {
  EXPECT_NEAR(UpperIncompleteGammaQ(0.5, 3.841458820694124 / 2), 0.05, 1e-12);
  EXPECT_NEAR(UpperIncompleteGammaQ(2.5, 11.070497693516351 / 2), 0.05, 1e-12);
  EXPECT_NEAR(UpperIncompleteGammaQ(3.5, 10.0), 0.005569683072945574, 1e-12);
  EXPECT_NEAR(UpperIncompleteGammaQ(1.5, 0.25), 0.9188914116546758, 1e-12);
}

TEST(StatTests, ContingencyChiSquareMatchesScipy) {
  TestResult r = ChiSquareTest({30, 20, 50}, {25, 35, 40});
  EXPECT_NEAR(r.statistic, 5.656565656565656, 1e-9);
  EXPECT_NEAR(*r.p_value, 0.05911427592751336, 1e-9);
  // Bins empty on both sides are dropped; one bin left means no test.
  EXPECT_NEAR(*ChiSquareTest({30, 0, 20, 50}, {25, 0, 35, 40}).p_value, 0.05911427592751336, 1e-9);
  EXPECT_EQ(*ChiSquareTest({10, 0}, {5, 0}).p_value, 1.0);
}

TEST(StatTests, KsOnExactSketchesGivesTheExactStatistic) {
  KllSketch a, b;
  for (double x : {0.1, 0.5, 0.9, 1.3, 2.0, 2.2, 3.1, 0.7, 0.4, 1.1}) a.Add(x);
  for (double x : {1.5, 2.5, 0.3, 3.3, 2.8, 1.9, 4.0, 2.1}) b.Add(x);
  TestResult r = KsTest(a, b);
  EXPECT_NEAR(r.statistic, 0.575, 1e-12);  // scipy: D = 0.575
  // scipy's asymptotic p (kstwo at round(n_e) = 4) is 0.0899; at n_e = 4.4 the
  // Stephens form gives 0.064. They agree as n grows (next test).
  EXPECT_NEAR(*r.p_value, 0.0642, 0.001);
  EXPECT_NEAR(r.effective_n, 80.0 / 18.0, 1e-12);
}

TEST(StatTests, KsPValueMatchesScipyAtModerateSizes) {
  // a = 0, 1, ..., 199, b = 40, 41, ..., 189: scipy ks_2samp(a, b, method='asymp')
  // gives D = 0.2 and p = 0.001719026767729339.
  KllSketch a(1000), b(1000);
  for (int i = 0; i < 200; ++i) a.Add(i);
  for (int i = 0; i < 150; ++i) b.Add(40 + i);
  TestResult r = KsTest(a, b);
  EXPECT_NEAR(r.statistic, 0.2, 1e-12);
  EXPECT_NEAR(*r.p_value, 0.001719026767729339, 0.001719026767729339 * 0.15);
}

TEST(StatTests, KsHandlesTiesAsOneStep) {
  KllSketch a, b;
  for (int i = 0; i < 100; ++i) a.Add(i % 2);  // half 0, half 1
  for (int i = 0; i < 100; ++i) b.Add(i % 4 == 0 ? 1 : 0);  // 3/4 zeros
  EXPECT_NEAR(KsTest(a, b).statistic, 0.25, 1e-12);
  EXPECT_NEAR(KsTest(a, a).statistic, 0.0, 1e-12);
}

TEST(StatTests, PsiIsZeroForEqualSharesAndGrowsWithShift) {
  EXPECT_NEAR(PsiScore({10, 20, 30}, {20, 40, 60}).statistic, 0.0, 1e-12);
  EXPECT_GT(PsiScore({10, 20, 30}, {30, 20, 10}).statistic, 0.5);
  EXPECT_FALSE(PsiScore({1, 2}, {2, 1}).p_value.has_value());
}

TEST(StatTests, Corrections) {
  const std::vector<double> p = {0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216};
  double t = 0;
  auto bonf = Significant(p, 0.05, Correction::kBonferroni, &t);
  EXPECT_DOUBLE_EQ(t, 0.005);
  EXPECT_EQ(std::count(bonf.begin(), bonf.end(), true), 1);
  auto bh = Significant(p, 0.05, Correction::kFdr, &t);
  EXPECT_DOUBLE_EQ(t, 0.01);  // p_(2) = 0.008 <= 0.05·2/10, p_(3) = 0.039 > 0.015
  EXPECT_EQ(std::count(bh.begin(), bh.end(), true), 2);
  auto none = Significant(p, 0.05, Correction::kNone, &t);
  EXPECT_EQ(std::count(none.begin(), none.end(), true), 5);
  auto nothing = Significant({0.5, 0.9}, 0.05, Correction::kFdr, &t);
  EXPECT_EQ(std::count(nothing.begin(), nothing.end(), true), 0);
}

}  // namespace
}  // namespace ferry::monitoring::drift
