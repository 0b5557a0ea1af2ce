#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "monitoring/drift/category_counts.h"
#include "monitoring/drift/histogram.h"
#include "monitoring/drift/kll_sketch.h"

// Two-sample tests between a reference and a current sketch, and the corrections that
// turn per-feature p-values into one decision. Pure functions.
namespace ferry::monitoring::drift {

struct TestResult {
  double statistic = 0;           // KS: D; chi²: X²; PSI: the index
  std::optional<double> p_value;  // none for PSI (a score with a threshold)
  double effective_n = 0;         // KS: the sample size its p-value used
};

// P(K > lambda) for the Kolmogorov distribution, 2·Σ_{j>=1} (-1)^(j-1)·exp(-2 j² λ²).
double KolmogorovSurvival(double lambda);

// Two-sided two-sample Kolmogorov–Smirnov test on two quantile sketches. D is the largest
// gap between the sketches' CDFs (evaluated at every retained item, ties together, so it
// is the exact D when both sketches are exact). The p-value is the asymptotic one with
// Stephens' small-sample correction, P(K > (√n_e + 0.12 + 0.11/√n_e)·D), where n_e is
// the effective sample size n_r·n_c/(n_r + n_c) with each n replaced by
// n' = 1 / (1/n + 6·σ²), σ the sketch's normalized rank error: a sketch's CDF is the
// sample's ECDF plus an independent error of variance up to σ², so it scatters like the
// ECDF of a smaller sample (at the median the ECDF's variance is 1/(4n); the factor 6
// rather than 4 is calibrated by simulation, see stat_tests.cc). Exact sketches (σ = 0)
// keep n. Without this a compacted sketch makes the test anti-conservative.
TestResult KsTest(const KllSketch& reference, const KllSketch& current);
// The same on the sketches' SortedItems(), when the caller has them already.
TestResult KsTest(const KllSketch& reference, const std::vector<std::pair<double, uint64_t>>& reference_items,
                  const KllSketch& current, const std::vector<std::pair<double, uint64_t>>& current_items);

// The n' above for one sketch (its count when it is exact).
double KsEffectiveN(const KllSketch& sketch);
// The KS result for statistic `d` between samples of effective sizes `ea` and `eb`
// (the p-value as above, on n_e = ea·eb/(ea + eb)).
TestResult KsResult(double d, double ea, double eb);

// Regularized upper incomplete gamma Q(a, x); chi² survival is Q(df/2, x/2).
double UpperIncompleteGammaQ(double a, double x);

// Pearson's chi² test of homogeneity on the 2×m contingency table of reference and
// current counts (as scipy.stats.chi2_contingency without continuity correction); bins
// empty in both are dropped, df = bins kept − 1. With one bin or an empty side: X² = 0,
// p = 1.
TestResult ChiSquareTest(const std::vector<uint64_t>& reference, const std::vector<uint64_t>& current);

// Population stability index Σ (c_i − r_i)·ln(c_i / r_i) over bin shares, each share
// floored at 1e-4 so an empty bin scores finitely. No p-value.
TestResult PsiScore(const std::vector<uint64_t>& reference, const std::vector<uint64_t>& current);

// The counts of a category table as one vector: its values in key order, then "other".
std::vector<uint64_t> CategoryVector(const CategoryCounts& counts);

enum class Correction { kBonferroni, kFdr, kNone };
std::string_view CorrectionName(Correction c);

// Which of `p_values` are significant at family-wise level `alpha`: Bonferroni (each
// p < alpha/m), Benjamini–Hochberg (the k smallest, k the largest with p_(k) <= alpha·k/m),
// or none (each p < alpha). `threshold` is set to the per-feature cut-off in effect
// (Bonferroni: alpha/m; BH: the largest alpha·k/m that was met, else alpha/m).
std::vector<bool> Significant(const std::vector<double>& p_values, double alpha, Correction correction,
                              double* threshold);

}  // namespace ferry::monitoring::drift
