#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/data_type.h"
#include "core/result.h"
#include "repository/model_config.pb.h"

// Pure helpers of the XGBoost runtime: reading what a model is from its learner
// config, choosing what to output from the model config, and the JSON strings the
// XGBoost C API takes. Nothing here calls libxgboost, so all of it is unit-tested
// without a model file.
// Thread-safety: stateless functions; OutputPlan and ModelInfo are values.
namespace ferry::runtime::xgb {

// What a loaded booster is, from XGBoosterSaveJsonConfig plus the model file.
struct ModelInfo {
  std::string objective;  // "reg:squarederror", "binary:logistic", "multi:softprob", ...
  std::string booster;    // "gbtree", "dart" or "gblinear"
  int64_t num_feature = 0;
  int64_t num_class = 0;   // > 1 only for multi-class objectives
  int64_t num_target = 1;  // > 1 for multi-output regression
  // Per-class intercepts of a model written by XGBoost >= 3.0 whose classes have
  // different base scores: the file was loaded with base_score 0 and these are added to
  // the margins (see UpgradeBaseScore). Empty otherwise.
  std::vector<float> intercepts;

  // Columns of XGBoost's own margin output: classes, targets, or 1.
  int64_t groups() const { return num_class > 1 ? num_class : std::max<int64_t>(num_target, 1); }
  bool classifier() const;
};

// Parses XGBoosterSaveJsonConfig's document (learner.objective.name,
// learner.gradient_booster.name, learner.learner_model_param.*).
Result<ModelInfo> ParseLearnerConfig(std::string_view json);

// How one output row is made from XGBoost's prediction.
enum class Transform {
  kNone,         // XGBoost's output as it is
  kProbaPair,    // binary: p -> [1 - p, p] (sklearn's predict_proba)
  kSigmoidPair,  // binary:logitraw margin m -> [1 - s(m), s(m)]
  kSoftmax,      // multi-class margins -> probabilities
  kArgmax,       // multi-class margins -> class index (multi:softmax's value)
};

// What Execute asks XGBoost for and what it returns.
struct OutputPlan {
  int predict_type = 0;  // XGBoost's "type": 0 transformed value, 1 raw margin
  Transform transform = Transform::kNone;
  int64_t width = 1;     // output columns per row
  bool add_intercepts = false;  // add ModelInfo::intercepts to the margins first
};

// Chooses the output from the config parameters `predict_proba` and `output_margin`
// ("true"/"false"). predict_proba defaults to true for classifiers (binary:* and
// multi:*), as MLServer does; output_margin to false. InvalidArgument names the
// parameter for a value other than true/false, predict_proba on a regressor, or both
// set to true.
Result<OutputPlan> PlanOutput(const ModelInfo& info, const inference::ModelConfig& config);

// XGBoost's __array_interface__ JSON for a row-major [rows, cols] matrix at `data`
// (FP32 or FP64, which XGBoost reads in place without a copy).
std::string DenseArrayInterface(const void* data, int64_t rows, int64_t cols, DataType type);

// XGBoost's prediction "type" for SHAP values (exact TreeSHAP, bias column last).
inline constexpr int kPredictContributions = 2;

// The config JSON of XGBoosterPredictFromDense (and FromDMatrix): all trees, missing = NaN, shapes as
// XGBoost's non-strict rules ([rows] or [rows, groups]).
std::string PredictConfig(int predict_type);

// Models written by XGBoost >= 3.0 store base_score as a vector string ("[0.5]"),
// which libxgboost 1.7 misreads without an error (every prediction is then off by a
// constant). Rewrites it in place in a JSON or UBJSON model so 1.7 reads it right: one
// value (or all equal) becomes the scalar; distinct per-class values become "0" and are
// returned, for the caller to add to the margins. Other files are left unchanged and
// return an empty vector. InvalidArgument for a vector that does not parse.
Result<std::vector<float>> UpgradeBaseScore(std::string* model_bytes);

// XGBGetLastError's text without its "[hh:mm:ss] file.cc:123: " prefix and the stack
// trace: XGBoost's own message, first line only.
std::string CleanError(std::string_view raw);

}  // namespace ferry::runtime::xgb
