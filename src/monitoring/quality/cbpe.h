#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace ferry::monitoring::quality {

// Confidence-based performance estimation (CBPE, as NannyML does it) for a binary
// classifier: with well-calibrated scores, a row predicted positive is a true positive
// with probability p and a false positive with 1 - p (a row predicted negative a false
// negative with p, a true negative with 1 - p), so the expected confusion matrix of a
// window, and every metric built from it, follows from the scores alone, without labels.
// The estimate is only as good as the calibration (see docs/monitoring.md): it cannot see
// concept drift (P(y | x) changing).
struct CbpeEstimate {
  uint64_t rows = 0;
  double accuracy = 0, precision = 0, recall = 0, f1 = 0;
  // The ROC AUC of the expected confusion matrices over every threshold (none for an
  // empty window or one whose scores are all 0 or all 1).
  std::optional<double> roc_auc;
};

// `scores`: the positive class's (calibrated) probability per row; `predicted`: whether
// the model predicted the positive class for the row (parallel).
CbpeEstimate EstimateBinary(const std::vector<double>& scores, const std::vector<bool>& predicted);

}  // namespace ferry::monitoring::quality
