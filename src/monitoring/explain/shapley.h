#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/result.h"

// Model-agnostic Shapley values of a black-box model f over a background set: the
// interventional value of a coalition S of features for a row x is
//   v(S) = mean over background rows b of f(x_S, b_rest)
// (x's values for the features in S, b's for the others). The attributions phi_i then
// satisfy sum_i phi_i = v(all) - v(none) = f(x) - E_b[f(b)] exactly, whichever method.
//
// The caller evaluates the model (through the scheduler, in batches): PlanShapley picks
// the coalitions, EvaluationRows lays out the rows to run, Attribute turns the model's
// answers into attributions. Nothing here runs a model, so all of it is unit-tested with
// a plain function for f.
// Thread-safety: stateless functions; ShapleyPlan and Matrix are values.
namespace ferry::monitoring::explain {

enum class Method {
  // Every one of the 2^M coalitions, combined with the Shapley weights
  // |S|! (M-|S|-1)! / M!: the exact Shapley values, which is what KernelSHAP's weighted
  // regression solves for once it sees every coalition.
  kKernelShap,
  // Antithetic permutation sampling: each sampled order of the features (and its reverse)
  // adds one marginal contribution per feature. Unbiased; exact on additive models.
  kPermutation,
};
std::string_view MethodName(Method method);  // "kernel_shap", "permutation"

// A row-major [rows, cols] matrix of doubles.
struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<double> values;
  double at(int64_t r, int64_t c) const { return values[r * cols + c]; }
};

struct ShapleyPlan {
  Method method = Method::kKernelShap;
  int64_t features = 0;
  // Each coalition: one byte per feature, 1 = the explained row's value. Exact: index =
  // the bit mask of the coalition. Permutation: [0] none, [1] all, then each order's
  // inner prefixes (sizes 1..M-1) in turn.
  std::vector<std::vector<uint8_t>> coalitions;
  std::vector<std::vector<int64_t>> orders;  // permutation only: the sampled feature orders
};

// Model rows evaluated per explained row: coalitions x background rows.
inline int64_t EvaluationsPerRow(const ShapleyPlan& plan, int64_t background_rows) {
  return static_cast<int64_t>(plan.coalitions.size()) * background_rows;
}

// Chooses the method and its coalitions for `features` features, `background_rows`
// background rows, spending at most `max_evaluations` model rows per explained row.
// With `allow_exact`, the exact method is used when all 2^M coalitions fit; otherwise as
// many permutation pairs as fit (each costs (M-1) coalitions). Orders come from `seed`.
// INVALID_ARGUMENT when not even one pair fits, naming the budget and what one costs.
Result<ShapleyPlan> PlanShapley(int64_t features, int64_t background_rows, int64_t max_evaluations, bool allow_exact,
                                uint64_t seed);

// The rows to run: for each explained row of `x` ([n, M]), each coalition, each
// background row, in that order, the background row with the coalition's features taken
// from x. [n * coalitions * B, M]. REQUIRES: x.cols == background.cols == plan.features.
Matrix EvaluationRows(const ShapleyPlan& plan, const Matrix& x, const Matrix& background);

// The attributions from the model's answers `f` ([n * coalitions * B, K]: K values per
// evaluated row, in EvaluationRows' order): [n, K, M + 1] (row-major), the last of the
// M + 1 being v(none), the expected value over the background.
// REQUIRES: f.rows == n * EvaluationsPerRow(plan, background_rows).
Matrix Attribute(const ShapleyPlan& plan, const Matrix& f, int64_t n, int64_t background_rows);

}  // namespace ferry::monitoring::explain
