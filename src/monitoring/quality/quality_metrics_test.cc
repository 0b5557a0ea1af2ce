#include "monitoring/quality/quality_metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ferry::monitoring::quality {
namespace {

// Expected values computed by hand (and matching sklearn.metrics on the same arrays).
TEST(QualityMetricsTest, BinaryWithProbabilities) {
  // truth 1 1 0 0 1, p(1) .9 .4 .6 .2 .8 -> predicted 1 0 1 0 1
  const double p[] = {0.9, 0.4, 0.6, 0.2, 0.8};
  const int truth[] = {1, 1, 0, 0, 1};
  std::vector<ClassObservation> rows;
  for (int i = 0; i < 5; ++i) rows.push_back({truth[i], p[i] >= 0.5 ? 1 : 0, {1 - p[i], p[i]}});
  ClassificationQuality q = Classification(rows, 2, 1);
  EXPECT_DOUBLE_EQ(q.accuracy, 0.6);
  EXPECT_DOUBLE_EQ(q.precision, 2.0 / 3);  // tp 2, fp 1
  EXPECT_DOUBLE_EQ(q.recall, 2.0 / 3);     // fn 1
  EXPECT_DOUBLE_EQ(q.f1, 2.0 / 3);
  ASSERT_TRUE(q.roc_auc);
  EXPECT_DOUBLE_EQ(*q.roc_auc, 5.0 / 6);  // pairs (pos > neg): .9>.6,.2; .4>.2; .8>.6,.2 = 5 of 6
  ASSERT_TRUE(q.log_loss);
  EXPECT_NEAR(*q.log_loss, -(std::log(0.9) + std::log(0.4) + std::log(0.4) + std::log(0.8) + std::log(0.8)) / 5, 1e-12);
}

TEST(QualityMetricsTest, TiesCountHalfInTheAuc) {
  EXPECT_DOUBLE_EQ(*RocAuc({0.5, 0.5, 0.5, 0.5}, {true, false, true, false}), 0.5);
  EXPECT_DOUBLE_EQ(*RocAuc({0.2, 0.5, 0.5}, {false, true, false}), 0.75);
  EXPECT_FALSE(RocAuc({0.1, 0.2}, {true, true}));
}

TEST(QualityMetricsTest, MulticlassMacroOverTheClassesPresent) {
  // 3 classes; truth 0 1 2 2, predicted 0 2 2 1.
  std::vector<ClassObservation> rows = {{0, 0, {}}, {1, 2, {}}, {2, 2, {}}, {2, 1, {}}};
  ClassificationQuality q = Classification(rows, 3, -1);
  EXPECT_DOUBLE_EQ(q.accuracy, 0.5);
  // per class precision 1, 0, .5; recall 1, 0, .5; f1 1, 0, .5
  EXPECT_DOUBLE_EQ(q.precision, 0.5);
  EXPECT_DOUBLE_EQ(q.recall, 0.5);
  EXPECT_DOUBLE_EQ(q.f1, 0.5);
  EXPECT_FALSE(q.roc_auc);
  EXPECT_FALSE(q.log_loss);
}

TEST(QualityMetricsTest, MulticlassAucNeedsEveryClassInTheTruth) {
  std::vector<ClassObservation> rows = {{0, 0, {0.8, 0.1, 0.1}}, {1, 1, {0.2, 0.7, 0.1}}, {1, 0, {0.5, 0.4, 0.1}}};
  EXPECT_FALSE(Classification(rows, 3, -1).roc_auc);
  rows.push_back({2, 2, {0.1, 0.1, 0.8}});
  ClassificationQuality q = Classification(rows, 3, -1);
  ASSERT_TRUE(q.roc_auc);
  // class 0: pos .8,.5 vs neg .2,.1 -> 1; class 1: pos .7,.4 vs .1,.1 -> 1; class 2: pos .8 vs .1 x3 -> 1
  EXPECT_DOUBLE_EQ(*q.roc_auc, 1.0);
}

TEST(QualityMetricsTest, RegressionAveragesOverOutputs) {
  std::vector<RegressionObservation> rows = {{{1, 10}, {2, 10}}, {{2, 20}, {2, 18}}, {{3, 30}, {5, 30}}};
  RegressionQuality q = Regression(rows);
  // output 0: errors -1 0 -2: mse 5/3, mae 1, r2 = 1 - 5/2; output 1: 0 2 0: mse 4/3, mae 2/3, r2 = 1 - 4/200
  EXPECT_NEAR(q.rmse, (std::sqrt(5.0 / 3) + std::sqrt(4.0 / 3)) / 2, 1e-12);
  EXPECT_NEAR(q.mae, (1 + 2.0 / 3) / 2, 1e-12);
  ASSERT_TRUE(q.r2);
  EXPECT_NEAR(*q.r2, ((1 - 5.0 / 2) + (1 - 4.0 / 200)) / 2, 1e-12);
}

TEST(QualityMetricsTest, ConstantTruthR2IsOneWhenExactElseZero) {
  EXPECT_DOUBLE_EQ(*Regression({{{1}, {1}}, {{1}, {1}}}).r2, 1.0);
  EXPECT_DOUBLE_EQ(*Regression({{{1}, {1}}, {{1}, {2}}}).r2, 0.0);
  EXPECT_FALSE(Regression({{{1}, {1}}}).r2);
}

}  // namespace
}  // namespace ferry::monitoring::quality
