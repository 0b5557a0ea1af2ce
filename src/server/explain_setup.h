#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/tensor.h"
#include "monitoring/explain/explain_settings.h"
#include "monitoring/explain/shapley.h"
#include "repository/model_config.pb.h"
#include "server/monitored_model.h"

namespace ferry::server {

// What explanations of one loaded version need, read once (on its first explain
// request): the settings, the tabular input explained, the output explained, the
// feature names, and the background of the model-agnostic methods.
// Thread-safety: immutable once built; shared by concurrent requests.
struct ExplainSetup {
  monitoring::explain::ExplainSettings settings;
  std::string input;      // the model's one input, a [rows, features] FP32 or FP64 matrix
  DataType input_type = DataType::kFp32;
  int64_t features = 0;
  std::string output;     // the output the model-agnostic methods explain
  std::vector<std::string> feature_names;  // from the profile; "<input>[i]" where it has none
  // The background rows, or the reason there are none (no profile, a bad one): only the
  // model-agnostic methods need it, so the reason is reported when one is asked for.
  std::optional<monitoring::explain::Matrix> background;
  Status background_error;
};

// Builds the setup of `config`'s model from its monitoring settings (the config's
// monitoring.* parameters over `defaults`) and its profile in `model_dir`.
// FAILED_PRECONDITION when explanations are off for the model or it has no single
// tabular input (naming the setting or the input); INVALID_ARGUMENT for a bad setting.
Result<ExplainSetup> BuildExplainSetup(const inference::ModelConfig& config, const std::filesystem::path& model_dir,
                                       const MonitoringDefaults& defaults);

// The explain response's outputs from attributions `a` ([rows, groups * (features + 1)],
// bias last in each group): "attributions" ([rows, features + 1], or
// [rows, groups, features + 1] when groups > 1), "expected_value" ([groups], the bias of
// the first row) and "feature_names" (BYTES [features + 1], "bias" last), in `type`
// (FP32 or FP64).
std::vector<Tensor> ExplanationTensors(const monitoring::explain::Matrix& a, int64_t groups,
                                       const std::vector<std::string>& feature_names, DataType type);

// The values of a numeric tensor as doubles, [rows, values per row]. INVALID_ARGUMENT
// naming the tensor for a non-numeric datatype.
Result<monitoring::explain::Matrix> TensorAsMatrix(const Tensor& t, int64_t rows);

// A [rows, cols] FP32 or FP64 tensor named `name` holding `m`'s rows [first, first + rows).
Tensor MatrixRowsAsTensor(const monitoring::explain::Matrix& m, int64_t first, int64_t rows, const std::string& name,
                          DataType type);

}  // namespace ferry::server
