#include "monitoring/explain/shapley.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

namespace ferry::monitoring::explain {
namespace {

// Past this many features 2^M coalitions is never a budget anyone sets.
constexpr int64_t kMaxExactFeatures = 20;

// v(S) for each coalition of one explained row: the mean of the model's K values over
// the B background rows of that coalition. [coalitions, K].
std::vector<double> CoalitionValues(const Matrix& f, int64_t row, int64_t coalitions, int64_t background) {
  const int64_t k = f.cols;
  std::vector<double> v(static_cast<size_t>(coalitions * k), 0.0);
  const int64_t base = row * coalitions * background;
  for (int64_t c = 0; c < coalitions; ++c)
    for (int64_t b = 0; b < background; ++b)
      for (int64_t j = 0; j < k; ++j) v[c * k + j] += f.at(base + c * background + b, j);
  for (double& x : v) x /= static_cast<double>(background);
  return v;
}

}  // namespace

std::string_view MethodName(Method method) {
  return method == Method::kKernelShap ? "kernel_shap" : "permutation";
}

Result<ShapleyPlan> PlanShapley(int64_t features, int64_t background_rows, int64_t max_evaluations, bool allow_exact,
                                uint64_t seed) {
  if (features <= 0) return InvalidArgument("a model of no features has nothing to explain");
  if (background_rows <= 0) return InvalidArgument("the background set is empty");
  ShapleyPlan plan;
  plan.features = features;
  if (allow_exact && features <= kMaxExactFeatures && (int64_t{1} << features) * background_rows <= max_evaluations) {
    plan.method = Method::kKernelShap;
    const int64_t count = int64_t{1} << features;
    plan.coalitions.resize(static_cast<size_t>(count));
    for (int64_t mask = 0; mask < count; ++mask) {
      auto& c = plan.coalitions[mask];
      c.resize(static_cast<size_t>(features));
      for (int64_t i = 0; i < features; ++i) c[i] = (mask >> i) & 1;
    }
    return plan;
  }
  // none and all, then (M - 1) inner prefixes per order; orders come in antithetic pairs.
  const int64_t per_pair = 2 * std::max<int64_t>(features - 1, 0);
  const int64_t budget_coalitions = max_evaluations / background_rows - 2;
  const int64_t pairs = per_pair == 0 ? 1 : budget_coalitions / per_pair;
  if (pairs < 1)
    return InvalidArgument("monitoring.explain.max_evaluations: " + std::to_string(max_evaluations) +
                           " model rows per explained row cannot pay for one pair of permutations of " +
                           std::to_string(features) + " features over " + std::to_string(background_rows) +
                           " background rows (" + std::to_string((per_pair + 2) * background_rows) + " needed)");
  plan.method = Method::kPermutation;
  plan.coalitions.push_back(std::vector<uint8_t>(static_cast<size_t>(features), 0));
  plan.coalitions.push_back(std::vector<uint8_t>(static_cast<size_t>(features), 1));
  std::mt19937_64 rng(seed);
  std::vector<int64_t> order(static_cast<size_t>(features));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t p = 0; p < pairs; ++p) {
    std::shuffle(order.begin(), order.end(), rng);
    plan.orders.push_back(order);
    plan.orders.emplace_back(order.rbegin(), order.rend());
  }
  for (const auto& o : plan.orders) {
    std::vector<uint8_t> c(static_cast<size_t>(features), 0);
    for (int64_t k = 0; k + 1 < features; ++k) {
      c[o[k]] = 1;
      plan.coalitions.push_back(c);
    }
  }
  return plan;
}

Matrix EvaluationRows(const ShapleyPlan& plan, const Matrix& x, const Matrix& background) {
  const int64_t m = plan.features;
  const int64_t b_rows = background.rows;
  Matrix out;
  out.cols = m;
  out.rows = x.rows * static_cast<int64_t>(plan.coalitions.size()) * b_rows;
  out.values.resize(static_cast<size_t>(out.rows * m));
  double* dst = out.values.data();
  for (int64_t r = 0; r < x.rows; ++r)
    for (const auto& c : plan.coalitions)
      for (int64_t b = 0; b < b_rows; ++b)
        for (int64_t i = 0; i < m; ++i) *dst++ = c[i] ? x.at(r, i) : background.at(b, i);
  return out;
}

Matrix Attribute(const ShapleyPlan& plan, const Matrix& f, int64_t n, int64_t background_rows) {
  const int64_t m = plan.features;
  const int64_t k = f.cols;
  const int64_t coalitions = static_cast<int64_t>(plan.coalitions.size());
  Matrix out;
  out.rows = n;
  out.cols = k * (m + 1);
  out.values.assign(static_cast<size_t>(n * out.cols), 0.0);
  // Shapley weight of a coalition of s features (without feature i): s! (M-s-1)! / M!.
  std::vector<double> weight(static_cast<size_t>(m), 0.0);
  for (int64_t s = 0; s < m; ++s)
    weight[s] = std::exp(std::lgamma(s + 1.0) + std::lgamma(static_cast<double>(m - s)) - std::lgamma(m + 1.0));
  for (int64_t r = 0; r < n; ++r) {
    const std::vector<double> v = CoalitionValues(f, r, coalitions, background_rows);
    double* row = out.values.data() + r * out.cols;
    if (plan.method == Method::kKernelShap) {
      for (int64_t mask = 0; mask < coalitions; ++mask) {
        const int64_t s = __builtin_popcountll(static_cast<unsigned long long>(mask));
        for (int64_t i = 0; i < m; ++i) {
          if ((mask >> i) & 1) continue;
          const int64_t with = mask | (int64_t{1} << i);
          for (int64_t j = 0; j < k; ++j) row[j * (m + 1) + i] += weight[s] * (v[with * k + j] - v[mask * k + j]);
        }
      }
      for (int64_t j = 0; j < k; ++j) row[j * (m + 1) + m] = v[0 * k + j];
      continue;
    }
    // Permutation: the value of prefix t (t = 0..M features) of order o.
    const int64_t orders = static_cast<int64_t>(plan.orders.size());
    auto prefix = [&](int64_t o, int64_t t) -> int64_t {
      if (t == 0) return 0;
      if (t == m) return 1;
      return 2 + o * (m - 1) + (t - 1);
    };
    for (int64_t o = 0; o < orders; ++o)
      for (int64_t t = 0; t < m; ++t) {
        const int64_t i = plan.orders[o][t];
        const int64_t before = prefix(o, t), after = prefix(o, t + 1);
        for (int64_t j = 0; j < k; ++j) row[j * (m + 1) + i] += v[after * k + j] - v[before * k + j];
      }
    for (int64_t j = 0; j < k; ++j) {
      for (int64_t i = 0; i < m; ++i) row[j * (m + 1) + i] /= static_cast<double>(orders);
      row[j * (m + 1) + m] = v[0 * k + j];
    }
  }
  return out;
}

}  // namespace ferry::monitoring::explain
