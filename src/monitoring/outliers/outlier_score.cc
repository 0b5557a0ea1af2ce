#include "monitoring/outliers/outlier_score.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ferry::monitoring::outliers {
namespace {

using drift::FeatureKind;

}  // namespace

Result<OutlierScorer> OutlierScorer::Create(const drift::ReferenceProfile& profile) {
  if (profile.features.empty()) return InvalidArgument("the reference profile has no input features");
  OutlierScorer s;
  s.min_rows_ = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < profile.features.size(); ++i) {
    const drift::ProfileFeature& pf = profile.features[i];
    const drift::FeatureSketch& sk = pf.sketch;
    Feature f;
    f.name = pf.name;
    f.kind = sk.kind;
    f.missing_p = (static_cast<double>(sk.missing) + 1) / (static_cast<double>(sk.rows) + 1);
    if (sk.kind == FeatureKind::kNumeric) {
      if (sk.quantiles.empty())
        return InvalidArgument("features[" + std::to_string(i) + "] '" + pf.name + "': no values in the profile");
      Numeric& num = f.numeric;
      // The CDF as a piecewise-linear curve through knots (value, mid-rank): the minimum
      // at rank 0.5, each sketch item at the middle of the inputs it stands for (an item
      // of weight w after c inputs: c + w/2), the maximum at n - 0.5. A compacted
      // sketch's outermost items stand for many inputs; spreading them so keeps a fresh
      // value between the minimum and the first item from looking like a record low.
      const auto items = sk.quantiles.SortedItems();
      double total = 0;
      for (const auto& [v, w] : items) total += static_cast<double>(w);
      num.values.push_back(sk.quantiles.min());
      num.ranks.push_back(0.5);
      double cum = 0;
      for (const auto& [v, w] : items) {
        const double center = std::max(num.ranks.back(), cum + static_cast<double>(w) / 2);
        cum += static_cast<double>(w);
        if (num.values.back() == v) {
          num.ranks.back() = center;
        } else {
          num.values.push_back(v);
          num.ranks.push_back(center);
        }
      }
      if (num.values.back() == sk.quantiles.max()) {
        num.ranks.back() = std::max(num.ranks.back(), total - 0.5);
      } else {
        num.values.push_back(sk.quantiles.max());
        num.ranks.push_back(total - 0.5);
      }
      num.n = cum;
      num.min = sk.quantiles.min();
      num.max = sk.quantiles.max();
      const double iqr = sk.quantiles.Quantile(0.75) - sk.quantiles.Quantile(0.25);
      const double range = num.max - num.min;
      // A Laplace's IQR is 2·b·ln 2; a constant feature falls back on its range or 1.
      num.tail_scale = iqr > 0 ? iqr / (2 * std::log(2.0)) : (range > 0 ? range : 1.0);
      s.min_rows_ = std::min(s.min_rows_, num.n);
    } else {
      Categorical& cat = f.categorical;
      const auto& counts = sk.categories.values();
      double n = static_cast<double>(sk.categories.total());
      // Values past the profile's cap sit in "other": each of them was rarer than
      // every kept value, so they count as at most the rarest kept value.
      std::vector<double> sorted;
      for (const auto& [v, c] : counts) sorted.push_back(static_cast<double>(c));
      std::sort(sorted.begin(), sorted.end());
      auto share_at_most = [&](double c) {
        double sum = static_cast<double>(sk.categories.other());
        for (double x : sorted) {
          if (x > c) break;
          sum += x;
        }
        return std::min(1.0, (sum + 1) / (n + 1));
      };
      for (const auto& [v, c] : counts) cat.p_by_value.emplace_back(v, share_at_most(static_cast<double>(c)));
      cat.unseen_p = sk.categories.other() > 0 ? share_at_most(sorted.empty() ? 0 : sorted.front())
                                               : 1 / (n + 1);
      s.min_rows_ = std::min(s.min_rows_, n);
    }
    s.features_.push_back(std::move(f));
  }
  return s;
}

double OutlierScorer::NumericP(const Numeric& f, double x) const {
  // r: the mid-rank of x among the reference values (interpolated between knots);
  // then P(X <= x) ~ (r + 0.5 + 1) / (n + 1) and P(X >= x) ~ (n - r + 0.5 + 1) / (n + 1).
  double r;
  if (x <= f.values.front()) {
    r = f.ranks.front();
  } else if (x >= f.values.back()) {
    r = f.ranks.back();
  } else {
    const size_t hi = static_cast<size_t>(std::upper_bound(f.values.begin(), f.values.end(), x) - f.values.begin());
    const size_t lo = hi - 1;
    const double t = (x - f.values[lo]) / (f.values[hi] - f.values[lo]);
    r = f.ranks[lo] + t * (f.ranks[hi] - f.ranks[lo]);
  }
  const double left = (r + 1.5) / (f.n + 1);
  const double right = (f.n - r + 1.5) / (f.n + 1);
  double p = 2 * std::min(left, right);
  // Past the range: the 2/(n+1) of the last seen value, decaying as a Laplace tail.
  if (x > f.max) p *= std::exp(-(x - f.max) / f.tail_scale);
  else if (x < f.min) p *= std::exp(-(f.min - x) / f.tail_scale);
  return std::min(1.0, p);
}

double OutlierScorer::CategoricalP(const Categorical& f, std::string_view v) const {
  auto it = std::lower_bound(f.p_by_value.begin(), f.p_by_value.end(), v,
                             [](const auto& e, std::string_view key) { return e.first < key; });
  return it != f.p_by_value.end() && it->first == v ? it->second : f.unseen_p;
}

double OutlierScorer::FeatureP(size_t i, const FeatureValue& value) const {
  const Feature& f = features_[i];
  if (value.missing) return f.missing_p;
  if (f.kind == FeatureKind::kNumeric) return std::isnan(value.number) ? f.missing_p : NumericP(f.numeric, value.number);
  return value.text.empty() ? f.missing_p : CategoricalP(f.categorical, value.text);
}

OutlierScorer::Score OutlierScorer::Compute(const std::vector<FeatureValue>& values) const {
  Score s;
  double min_p = 1;
  for (size_t i = 0; i < features_.size() && i < values.size(); ++i) {
    const double p = FeatureP(i, values[i]);
    if (p < min_p) {
      min_p = p;
      s.feature = i;
    }
  }
  s.p_value = std::min(1.0, static_cast<double>(features_.size()) * min_p);
  // Tiny p underflows to 0 far out; the score stays finite.
  s.score = -std::log10(std::max(s.p_value, std::numeric_limits<double>::min()));
  if (s.score == 0) s.score = 0;  // no "-0"
  return s;
}

double OutlierScorer::min_inside_p() const {
  return std::min(1.0, static_cast<double>(features_.size()) * 1 / (min_rows_ + 1));
}

}  // namespace ferry::monitoring::outliers
