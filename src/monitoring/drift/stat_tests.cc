#include "monitoring/drift/stat_tests.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ferry::monitoring::drift {

double KolmogorovSurvival(double lambda) {
  if (lambda <= 0) return 1.0;
  // Below 0.2 the alternating series converges slowly and its value is 1 to 1e-15.
  if (lambda < 0.2) return 1.0;
  double sum = 0, sign = 1;
  const double l2 = -2.0 * lambda * lambda;
  for (int j = 1; j <= 100; ++j) {
    const double term = std::exp(l2 * j * j);
    sum += sign * term;
    if (term < 1e-16 * std::max(sum, 1e-300)) break;
    sign = -sign;
  }
  return std::clamp(2.0 * sum, 0.0, 1.0);
}

namespace {

// Calibrated by simulation (N(0, 1), k = 200, reference 5000 or 20000 rows, windows of 250
// to 2000 rows, 4000 null pairs each): with 6 the false-alarm rate at p < 0.05 is 0.050 to
// 0.054, against 0.054 for exact samples; the pointwise argument alone (4) leaves it at
// 0.057 to 0.067, because the sketch error is largest where the KS sup is taken. For
// small k (32, 64) 6 is conservative (0.005 to 0.015).
constexpr double kSketchVarianceFactor = 6.0;

}  // namespace

double KsEffectiveN(const KllSketch& s) {
  const double n = static_cast<double>(s.count());
  const double sigma = s.normalized_rank_error();
  return 1.0 / (1.0 / n + kSketchVarianceFactor * sigma * sigma);
}

TestResult KsResult(double d, double ea, double eb) {
  TestResult r;
  const double en = ea * eb / (ea + eb);
  const double sq = std::sqrt(en);
  r.statistic = d;
  r.effective_n = en;
  r.p_value = KolmogorovSurvival((sq + 0.12 + 0.11 / sq) * d);
  return r;
}

TestResult KsTest(const KllSketch& reference, const KllSketch& current) {
  if (reference.empty() || current.empty()) return KsTest(reference, {}, current, {});
  return KsTest(reference, reference.SortedItems(), current, current.SortedItems());
}

TestResult KsTest(const KllSketch& reference, const std::vector<std::pair<double, uint64_t>>& a,
                  const KllSketch& current, const std::vector<std::pair<double, uint64_t>>& b) {
  TestResult r;
  if (reference.empty() || current.empty()) {
    r.p_value = 1.0;
    return r;
  }
  const double na = static_cast<double>(reference.count()), nb = static_cast<double>(current.count());
  // The gap ca/na − cb/nb scaled by na·nb: no division per step (the sweep is most of a
  // test's cost).
  double ca = 0, cb = 0, gap = 0;
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    double v;
    if (j == b.size() || (i < a.size() && a[i].first <= b[j].first)) {
      v = a[i].first;
    } else {
      v = b[j].first;
    }
    while (i < a.size() && a[i].first == v) ca += static_cast<double>(a[i++].second);
    while (j < b.size() && b[j].first == v) cb += static_cast<double>(b[j++].second);
    gap = std::max(gap, std::abs(ca * nb - cb * na));
  }
  return KsResult(gap / (na * nb), KsEffectiveN(reference), KsEffectiveN(current));
}

namespace {

// Series for P(a, x), x < a + 1.
double LowerGammaSeries(double a, double x) {
  double ap = a, sum = 1.0 / a, del = sum;
  for (int n = 0; n < 1000; ++n) {
    ap += 1;
    del *= x / ap;
    sum += del;
    if (std::abs(del) < std::abs(sum) * 1e-15) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

// Continued fraction (modified Lentz) for Q(a, x), x >= a + 1.
double UpperGammaFraction(double a, double x) {
  constexpr double kTiny = 1e-300;
  double b = x + 1 - a, c = 1 / kTiny, d = 1 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) < 1e-15) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}

}  // namespace

double UpperIncompleteGammaQ(double a, double x) {
  if (x <= 0) return 1.0;
  if (x < a + 1) return std::clamp(1.0 - LowerGammaSeries(a, x), 0.0, 1.0);
  return std::clamp(UpperGammaFraction(a, x), 0.0, 1.0);
}

TestResult ChiSquareTest(const std::vector<uint64_t>& reference, const std::vector<uint64_t>& current) {
  TestResult r;
  r.p_value = 1.0;
  const size_t m = std::min(reference.size(), current.size());
  const double nr = std::accumulate(reference.begin(), reference.begin() + m, 0.0);
  const double nc = std::accumulate(current.begin(), current.begin() + m, 0.0);
  if (nr == 0 || nc == 0) return r;
  const double n = nr + nc;
  double x2 = 0;
  int bins = 0;
  for (size_t i = 0; i < m; ++i) {
    const double col = static_cast<double>(reference[i]) + static_cast<double>(current[i]);
    if (col == 0) continue;
    ++bins;
    const double er = nr * col / n, ec = nc * col / n;
    x2 += (reference[i] - er) * (reference[i] - er) / er + (current[i] - ec) * (current[i] - ec) / ec;
  }
  if (bins < 2) return r;
  r.statistic = x2;
  r.effective_n = nr * nc / n;
  r.p_value = UpperIncompleteGammaQ((bins - 1) / 2.0, x2 / 2.0);
  return r;
}

TestResult PsiScore(const std::vector<uint64_t>& reference, const std::vector<uint64_t>& current) {
  TestResult r;
  const size_t m = std::min(reference.size(), current.size());
  const double nr = std::accumulate(reference.begin(), reference.begin() + m, 0.0);
  const double nc = std::accumulate(current.begin(), current.begin() + m, 0.0);
  if (nr == 0 || nc == 0) return r;
  double psi = 0;
  for (size_t i = 0; i < m; ++i) {
    const double pr = std::max(reference[i] / nr, 1e-4), pc = std::max(current[i] / nc, 1e-4);
    psi += (pc - pr) * std::log(pc / pr);
  }
  r.statistic = psi;
  r.effective_n = nr * nc / (nr + nc);
  return r;
}

std::vector<uint64_t> CategoryVector(const CategoryCounts& counts) {
  std::vector<uint64_t> v;
  v.reserve(counts.values().size() + 1);
  for (const auto& [key, n] : counts.values()) v.push_back(n);
  v.push_back(counts.other());
  return v;
}

std::string_view CorrectionName(Correction c) {
  switch (c) {
    case Correction::kBonferroni: return "bonferroni";
    case Correction::kFdr: return "fdr";
    case Correction::kNone: return "none";
  }
  return "none";
}

std::vector<bool> Significant(const std::vector<double>& p_values, double alpha, Correction correction,
                              double* threshold) {
  const size_t m = p_values.size();
  std::vector<bool> out(m, false);
  if (m == 0) {
    *threshold = alpha;
    return out;
  }
  switch (correction) {
    case Correction::kNone:
      *threshold = alpha;
      break;
    case Correction::kBonferroni:
      *threshold = alpha / m;
      break;
    case Correction::kFdr: {
      std::vector<double> sorted = p_values;
      std::sort(sorted.begin(), sorted.end());
      *threshold = alpha / m;
      for (size_t k = m; k >= 1; --k) {
        if (sorted[k - 1] <= alpha * k / m) {
          *threshold = alpha * k / m;
          for (size_t i = 0; i < m; ++i) out[i] = p_values[i] <= *threshold;
          break;
        }
      }
      return out;
    }
  }
  for (size_t i = 0; i < m; ++i) out[i] = p_values[i] < *threshold;
  return out;
}

}  // namespace ferry::monitoring::drift
