#include "monitoring/quality/cbpe.h"

#include <algorithm>
#include <functional>

namespace ferry::monitoring::quality {

CbpeEstimate EstimateBinary(const std::vector<double>& scores, const std::vector<bool>& predicted) {
  CbpeEstimate out;
  out.rows = scores.size();
  if (scores.empty()) return out;
  double tp = 0, fp = 0, fn = 0, tn = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    const double p = std::clamp(scores[i], 0.0, 1.0);
    if (predicted[i]) {
      tp += p;
      fp += 1 - p;
    } else {
      fn += p;
      tn += 1 - p;
    }
  }
  auto ratio = [](double a, double b) { return b <= 0 ? 0.0 : a / b; };
  out.accuracy = (tp + tn) / static_cast<double>(scores.size());
  out.precision = ratio(tp, tp + fp);
  out.recall = ratio(tp, tp + fn);
  out.f1 = ratio(2 * tp, 2 * tp + fp + fn);

  // Thresholds from the highest score down: at each distinct score s the rows scoring
  // >= s are called positive; their expected TP (sum p) and FP (sum 1 - p) over the
  // totals give one ROC point; the curve is closed by the trapezoids between points.
  std::vector<double> sorted(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) sorted[i] = std::clamp(scores[i], 0.0, 1.0);
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  double positives = 0, negatives = 0;
  for (double p : sorted) {
    positives += p;
    negatives += 1 - p;
  }
  if (positives <= 0 || negatives <= 0) return out;
  double area = 0, tpr = 0, fpr = 0, cum_tp = 0, cum_fp = 0;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j] == sorted[i]) {
      cum_tp += sorted[j];
      cum_fp += 1 - sorted[j];
      ++j;
    }
    const double next_tpr = cum_tp / positives, next_fpr = cum_fp / negatives;
    area += (next_fpr - fpr) * (next_tpr + tpr) / 2;
    tpr = next_tpr;
    fpr = next_fpr;
    i = j;
  }
  out.roc_auc = area;
  return out;
}

}  // namespace ferry::monitoring::quality
