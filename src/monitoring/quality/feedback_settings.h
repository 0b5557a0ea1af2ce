#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace ferry::monitoring::quality {

// What the prediction output holds, and so how true values are compared with it.
enum class Task {
  kAuto,            // decided from the first answer: integer/BOOL/BYTES -> labels; floats whose
                    // rows are >= 2 wide, in [0, 1] and sum to 1 -> probabilities; else regression
  kClassification,  // float output: probabilities (1 wide: of the positive class); else labels
  kRegression,
};

// A model version's feedback settings: the keys of its monitoring settings that start
// with "feedback." (table in docs/monitoring.md, "Ground-truth feedback and live quality").
struct FeedbackSettings {
  bool enabled = false;          // feedback.enabled
  std::string output;            // feedback.output: the prediction tensor; "" = the first output
  Task task = Task::kAuto;       // feedback.task: auto | classification | regression
  uint64_t max_pending = 100000;  // feedback.max_pending: predictions kept for feedback, 1..10^8
  uint64_t ttl_ns = 3600'000'000'000;  // feedback.ttl_s: how long one waits (seconds, default 3600)
  // feedback.window: joined rows ("1000", the default) or a duration ("10m") over
  // which quality is computed (a duration window also keeps at most kMaxWindowRows).
  bool window_is_time = false;
  uint64_t window_rows = 1000;
  uint64_t window_ns = 0;
  double threshold = 0.5;           // feedback.threshold: a binary classifier predicts class 1 at p >= it
  std::vector<std::string> classes;  // feedback.classes: "a,b,c" names of the probability columns
  bool estimate = true;              // feedback.estimate: CBPE for binary probability outputs
  // feedback.calibration: a labelled reference set (JSON {"probability": [...], "label":
  // [...]}, relative to the model's folder) that CBPE calibrates the scores on; "" = none.
  std::filesystem::path calibration;

  static constexpr uint64_t kMaxWindowRows = 100000;
};

// INVALID_ARGUMENT naming the setting ("monitoring.feedback.ttl_s: 'x' is not a number")
// for a bad value or an unknown feedback.* key.
Result<FeedbackSettings> ParseFeedbackSettings(const std::map<std::string, std::string, std::less<>>& settings,
                                               const std::filesystem::path& model_dir);

}  // namespace ferry::monitoring::quality
