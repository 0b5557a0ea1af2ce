#include "monitoring/quality/quality_metrics.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>

namespace ferry::monitoring::quality {

std::optional<double> RocAuc(const std::vector<double>& scores, const std::vector<bool>& positives) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Sum of the positives' mid-ranks (1-based) over tied groups.
  double rank_sum = 0;
  uint64_t pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double mid = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t k = i; k < j; ++k) {
      if (positives[order[k]]) {
        rank_sum += mid;
        ++pos;
      }
    }
    i = j;
  }
  const uint64_t neg = n - pos;
  if (pos == 0 || neg == 0) return std::nullopt;
  const double p = static_cast<double>(pos), q = static_cast<double>(neg);
  return (rank_sum - p * (p + 1) / 2.0) / (p * q);
}

ClassificationQuality Classification(const std::vector<ClassObservation>& rows, int32_t classes, int32_t positive) {
  ClassificationQuality out;
  out.rows = rows.size();
  if (rows.empty() || classes <= 0) return out;
  const size_t k = static_cast<size_t>(classes);
  std::vector<uint64_t> tp(k), fp(k), fn(k), truth_count(k);
  uint64_t correct = 0;
  bool have_probabilities = true;
  for (const auto& r : rows) {
    const size_t t = static_cast<size_t>(r.truth), p = static_cast<size_t>(r.predicted);
    ++truth_count[t];
    if (t == p) {
      ++correct;
      ++tp[t];
    } else {
      ++fp[p];
      ++fn[t];
    }
    if (r.probabilities.size() != k) have_probabilities = false;
  }
  out.accuracy = static_cast<double>(correct) / static_cast<double>(rows.size());
  auto ratio = [](uint64_t a, uint64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b); };
  if (positive >= 0) {
    const size_t c = static_cast<size_t>(positive);
    out.precision = ratio(tp[c], tp[c] + fp[c]);
    out.recall = ratio(tp[c], tp[c] + fn[c]);
    out.f1 = ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c]);
  } else {
    size_t present = 0;
    for (size_t c = 0; c < k; ++c) {
      if (tp[c] + fp[c] + fn[c] == 0) continue;  // in neither the truth nor the predictions
      ++present;
      out.precision += ratio(tp[c], tp[c] + fp[c]);
      out.recall += ratio(tp[c], tp[c] + fn[c]);
      out.f1 += ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c]);
    }
    if (present > 0) {
      out.precision /= static_cast<double>(present);
      out.recall /= static_cast<double>(present);
      out.f1 /= static_cast<double>(present);
    }
  }
  if (!have_probabilities) return out;

  double loss = 0;
  for (const auto& r : rows) {
    const double p = std::clamp(r.probabilities[static_cast<size_t>(r.truth)], DBL_EPSILON, 1.0 - DBL_EPSILON);
    loss -= std::log(p);
  }
  out.log_loss = loss / static_cast<double>(rows.size());

  std::vector<double> scores(rows.size());
  std::vector<bool> is_class(rows.size());
  auto auc_of = [&](size_t c) {
    for (size_t i = 0; i < rows.size(); ++i) {
      scores[i] = rows[i].probabilities[c];
      is_class[i] = static_cast<size_t>(rows[i].truth) == c;
    }
    return RocAuc(scores, is_class);
  };
  if (positive >= 0) {
    out.roc_auc = auc_of(static_cast<size_t>(positive));
    return out;
  }
  double sum = 0;
  for (size_t c = 0; c < k; ++c) {
    std::optional<double> a = truth_count[c] == 0 ? std::nullopt : auc_of(c);
    if (!a) return out;
    sum += *a;
  }
  out.roc_auc = sum / static_cast<double>(k);
  return out;
}

RegressionQuality Regression(const std::vector<RegressionObservation>& rows) {
  RegressionQuality out;
  out.rows = rows.size();
  if (rows.empty()) return out;
  const size_t width = rows.front().truth.size();
  if (width == 0) return out;
  const double n = static_cast<double>(rows.size());
  double rmse = 0, mae = 0, r2 = 0;
  for (size_t j = 0; j < width; ++j) {
    double sq = 0, abs = 0, mean = 0;
    for (const auto& r : rows) {
      const double e = r.truth[j] - r.predicted[j];
      sq += e * e;
      abs += std::abs(e);
      mean += r.truth[j];
    }
    mean /= n;
    double total = 0;
    for (const auto& r : rows) total += (r.truth[j] - mean) * (r.truth[j] - mean);
    rmse += std::sqrt(sq / n);
    mae += abs / n;
    if (total == 0) {
      r2 += sq == 0 ? 1.0 : 0.0;
    } else {
      r2 += 1.0 - sq / total;
    }
  }
  const double w = static_cast<double>(width);
  out.rmse = rmse / w;
  out.mae = mae / w;
  if (rows.size() >= 2) out.r2 = r2 / w;
  return out;
}

}  // namespace ferry::monitoring::quality
