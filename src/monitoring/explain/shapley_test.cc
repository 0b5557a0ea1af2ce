#include "monitoring/explain/shapley.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>

namespace ferry::monitoring::explain {
namespace {

using Model = std::function<std::vector<double>(const double* row)>;

Matrix Random(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0.0, 2.0);
  Matrix m{rows, cols, {}};
  for (int64_t i = 0; i < rows * cols; ++i) m.values.push_back(d(rng));
  return m;
}

// Plans, lays out, evaluates `f` and attributes: what the server does around the scheduler.
Matrix Explain(const Model& f, int64_t k, const Matrix& x, const Matrix& bg, int64_t budget, bool exact,
               Method* method = nullptr) {
  auto plan = PlanShapley(x.cols, bg.rows, budget, exact, 7);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (method) *method = plan->method;
  Matrix rows = EvaluationRows(*plan, x, bg);
  Matrix out{rows.rows, k, {}};
  for (int64_t r = 0; r < rows.rows; ++r)
    for (double v : f(rows.values.data() + r * rows.cols)) out.values.push_back(v);
  return Attribute(*plan, out, x.rows, bg.rows);
}

TEST(Shapley, LinearModelGetsWeightTimesDistanceFromTheBackgroundMean) {
  const std::vector<double> w = {1.5, -2.0, 0.25, 3.0, 0.0};
  Model f = [&](const double* r) {
    double y = 0.5;
    for (size_t i = 0; i < w.size(); ++i) y += w[i] * r[i];
    return std::vector<double>{y, -y};
  };
  Matrix x = Random(3, 5, 1), bg = Random(10, 5, 2);
  std::vector<double> mean(5, 0.0);
  for (int64_t b = 0; b < bg.rows; ++b)
    for (int64_t i = 0; i < 5; ++i) mean[i] += bg.at(b, i) / bg.rows;
  for (bool exact : {true, false}) {
    Method method;
    Matrix a = Explain(f, 2, x, bg, exact ? 1 << 20 : 200, exact, &method);
    EXPECT_EQ(method, exact ? Method::kKernelShap : Method::kPermutation);
    ASSERT_EQ(a.cols, 2 * 6);
    for (int64_t r = 0; r < x.rows; ++r)
      for (int64_t i = 0; i < 5; ++i) {
        EXPECT_NEAR(a.at(r, i), w[i] * (x.at(r, i) - mean[i]), 1e-9) << "row " << r << " feature " << i;
        EXPECT_NEAR(a.at(r, 6 + i), -w[i] * (x.at(r, i) - mean[i]), 1e-9);
      }
  }
}

TEST(Shapley, AttributionsSumToThePredictionMinusTheExpectedValue) {
  Model f = [](const double* r) { return std::vector<double>{r[0] * r[1] + r[2] * r[2] - std::max(r[3], r[0])}; };
  Matrix x = Random(4, 4, 3), bg = Random(8, 4, 4);
  for (bool exact : {true, false}) {
    Matrix a = Explain(f, 1, x, bg, exact ? 1 << 20 : 100, exact);
    double expected = 0;
    for (int64_t b = 0; b < bg.rows; ++b) expected += f(bg.values.data() + b * 4)[0] / bg.rows;
    for (int64_t r = 0; r < x.rows; ++r) {
      double sum = 0;
      for (int64_t i = 0; i < 4; ++i) sum += a.at(r, i);
      EXPECT_NEAR(a.at(r, 4), expected, 1e-12);
      EXPECT_NEAR(sum, f(x.values.data() + r * 4)[0] - expected, 1e-9) << (exact ? "exact" : "permutation");
    }
  }
}

TEST(Shapley, ExactSplitsAnInteractionEvenly) {
  // f = x0 * x1 against the background (0, 0) at x = (1, 1): each feature gets 1/2.
  Model f = [](const double* r) { return std::vector<double>{r[0] * r[1]}; };
  Matrix x{1, 2, {1.0, 1.0}}, bg{1, 2, {0.0, 0.0}};
  Matrix a = Explain(f, 1, x, bg, 100, true);
  EXPECT_DOUBLE_EQ(a.at(0, 0), 0.5);
  EXPECT_DOUBLE_EQ(a.at(0, 1), 0.5);
  EXPECT_DOUBLE_EQ(a.at(0, 2), 0.0);
}

TEST(Shapley, PlanSpendsTheBudget) {
  auto exact = PlanShapley(4, 10, 160, true, 0);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->method, Method::kKernelShap);
  EXPECT_EQ(EvaluationsPerRow(*exact, 10), 160);
  auto sampled = PlanShapley(4, 10, 159, true, 0);
  ASSERT_TRUE(sampled.ok());
  EXPECT_EQ(sampled->method, Method::kPermutation);
  EXPECT_LE(EvaluationsPerRow(*sampled, 10), 159);
  EXPECT_EQ(sampled->orders.size(), 4u);  // (15 - 2) / 6 = 2 pairs
  auto none = PlanShapley(30, 10, 50, true, 0);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("monitoring.explain.max_evaluations"), std::string::npos);
}

}  // namespace
}  // namespace ferry::monitoring::explain
