#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/result.h"

namespace ferry::monitoring::quality {

// A monotone map of a binary classifier's scores to calibrated probabilities, fitted by
// isotonic regression (pool adjacent violators) on a labelled reference set, as NannyML's
// CBPE calibrates before it estimates. Between fitted points it interpolates linearly;
// outside them it clips (scikit-learn's IsotonicRegression(out_of_bounds="clip")).
// Thread-safety: a value; Apply is const.
class IsotonicCalibrator {
 public:
  // REQUIRES: scores and labels (0 or 1) parallel and not empty.
  static IsotonicCalibrator Fit(const std::vector<double>& scores, const std::vector<int>& labels);
  double Apply(double score) const;
  size_t points() const { return x_.size(); }

 private:
  std::vector<double> x_, y_;  // increasing x; non-decreasing y
};

// The expected calibration error of `scores` against `labels` over `bins` bins of equal
// row counts (sorted by score): sum over bins of |mean label - mean score| x bin share.
double ExpectedCalibrationError(const std::vector<double>& scores, const std::vector<int>& labels, int bins = 10);

// Whether calibrating helps, NannyML's way: over `splits` stratified shuffle splits
// (90 % fit, 10 % test; fixed seed) the mean ECE of the calibrated test scores must be
// below that of the raw ones.
bool NeedsCalibration(const std::vector<double>& scores, const std::vector<int>& labels, int splits = 10);

// A labelled reference set for calibration: the JSON file {"probability": [p, ...],
// "label": [0 or 1, ...]} (parallel arrays, the positive class's probability). Errors
// name the file and the field.
struct CalibrationSet {
  std::vector<double> scores;
  std::vector<int> labels;
};
Result<CalibrationSet> ReadCalibrationSet(const std::filesystem::path& path);

}  // namespace ferry::monitoring::quality
