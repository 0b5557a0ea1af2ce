#include "monitoring/quality/cbpe.h"

#include <gtest/gtest.h>

#include <random>

#include "monitoring/quality/quality_metrics.h"

namespace ferry::monitoring::quality {
namespace {

TEST(CbpeTest, ExpectedConfusionMatrixByHand) {
  // p .9 .6 .2 with decisions 1 1 0: TP .9+.6, FP .1+.4, FN .2, TN .8
  CbpeEstimate e = EstimateBinary({0.9, 0.6, 0.2}, {true, true, false});
  EXPECT_NEAR(e.accuracy, (1.5 + 0.8) / 3, 1e-12);
  EXPECT_NEAR(e.precision, 1.5 / 2, 1e-12);
  EXPECT_NEAR(e.recall, 1.5 / 1.7, 1e-12);
  EXPECT_NEAR(e.f1, 3.0 / (3.0 + 0.5 + 0.2), 1e-12);
  ASSERT_TRUE(e.roc_auc);
  EXPECT_FALSE(EstimateBinary({1, 1}, {true, true}).roc_auc);
  EXPECT_EQ(EstimateBinary({}, {}).rows, 0u);
}

// With labels drawn from calibrated scores, the estimate converges to the realised value.
TEST(CbpeTest, CalibratedScoresEstimateTheRealisedQuality) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> p;
  std::vector<bool> predicted;
  std::vector<ClassObservation> rows;
  for (int i = 0; i < 200000; ++i) {
    const double s = u(rng) * u(rng) + 0.1 * u(rng);  // skewed scores in [0, 1.1)
    const double score = std::min(s, 1.0);
    const int y = u(rng) < score ? 1 : 0;
    p.push_back(score);
    predicted.push_back(score >= 0.5);
    rows.push_back({y, score >= 0.5 ? 1 : 0, {1 - score, score}});
  }
  CbpeEstimate e = EstimateBinary(p, predicted);
  ClassificationQuality q = Classification(rows, 2, 1);
  EXPECT_NEAR(e.accuracy, q.accuracy, 0.005);
  EXPECT_NEAR(e.precision, q.precision, 0.01);
  EXPECT_NEAR(e.recall, q.recall, 0.01);
  EXPECT_NEAR(e.f1, q.f1, 0.01);
  EXPECT_NEAR(*e.roc_auc, *q.roc_auc, 0.005);
}

}  // namespace
}  // namespace ferry::monitoring::quality
