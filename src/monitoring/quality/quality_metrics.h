#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace ferry::monitoring::quality {

// Live model quality as pure functions of joined observations (a prediction and the
// true value that feedback brought for it). Definitions follow scikit-learn's
// sklearn.metrics, so that values can be checked against it on the same data.

// One classified row. Classes are indices 0..classes-1 (a label output's labels are
// mapped to indices by the caller). `probabilities` is empty for a model that answers
// labels only, else one probability per class.
struct ClassObservation {
  int32_t truth = 0;
  int32_t predicted = 0;
  std::vector<double> probabilities;
};

struct ClassificationQuality {
  uint64_t rows = 0;
  double accuracy = 0;
  // Binary (positive class given): of the positive class. Multi-class: macro averages
  // over the classes that occur in the truth or the predictions (sklearn's
  // average='macro'); a class never predicted has precision 0 (zero_division=0).
  double precision = 0, recall = 0, f1 = 0;
  // Binary: the ROC AUC of the positive class's probability (ties count half, as the
  // trapezoidal ROC does). Multi-class: one-vs-rest macro AUC. None without
  // probabilities, or when a class is missing from the truth (sklearn raises there).
  std::optional<double> roc_auc;
  // Mean cross-entropy, probabilities clipped to [eps, 1 - eps] (eps = DBL_EPSILON);
  // none without probabilities.
  std::optional<double> log_loss;
};

// REQUIRES: every index in [0, classes); probabilities empty or `classes` wide in every
// observation. `positive` >= 0 makes it binary (precision, recall, F1 of that class).
ClassificationQuality Classification(const std::vector<ClassObservation>& rows, int32_t classes, int32_t positive);

// One regressed row: parallel vectors of the model's outputs and the true values.
struct RegressionObservation {
  std::vector<double> truth;
  std::vector<double> predicted;
};

struct RegressionQuality {
  uint64_t rows = 0;
  // Each the uniform average over the outputs of the per-output value (sklearn's
  // multioutput='uniform_average'). R² of an output whose truth is constant is 1 when
  // predicted exactly, else 0 (sklearn's force_finite); none for fewer than 2 rows.
  double rmse = 0, mae = 0;
  std::optional<double> r2;
};

// REQUIRES: every observation's vectors as wide as the first one's.
RegressionQuality Regression(const std::vector<RegressionObservation>& rows);

// The area under the ROC curve of `scores` for `positives` (parallel), ties counted
// half (the Mann-Whitney U statistic over positives x negatives); none without both a
// positive and a negative.
std::optional<double> RocAuc(const std::vector<double>& scores, const std::vector<bool>& positives);

}  // namespace ferry::monitoring::quality
