#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/result.h"
#include "repository/model_config.pb.h"

// MLServer's per-model file, model-settings.json, read into ferry's ModelConfig so an
// MLServer model repository loads unchanged (docs/runtimes.md has the field table).
//
//   implementation  mlserver_xgboost.XGBoostModel   -> backend "xgboost"
//                   mlserver_sklearn.SKLearnModel   -> backend "sklearn"
//                   mlserver_lightgbm.LightGBMModel -> backend "lightgbm"
//                   anything else                   -> UNAVAILABLE, naming it
//   parameters.uri      -> default_model_filename (relative to the model folder)
//   parameters.version  -> the one version served (numeric; anything else is 1)
//   parameters.extra    -> config parameters (scalar values, as strings)
//   inputs / outputs    -> input / output (datatype, shape; the batch dimension is
//                          dropped when batching is on)
//   max_batch_size > 1  -> max_batch_size and dynamic_batching, with
//   max_batch_time (s)  -> max_queue_delay_microseconds
//   parallel_workers    -> instance_group count
// Other fields are accepted and ignored, each named in `ignored`.
namespace ferry::repository {

struct MlserverSettings {
  inference::ModelConfig config;
  // "field: why" for each field read but not applied, for the caller to log.
  std::vector<std::string> ignored;
};

// The file name MLServer looks for in a model folder.
inline constexpr const char* kMlserverSettingsFile = "model-settings.json";

// Parses model-settings.json text. Errors (INVALID_ARGUMENT, or UNAVAILABLE for an
// implementation ferry has no runtime for) name the file and the field.
Result<MlserverSettings> ParseMlserverSettings(const std::string& json);

// The model files MLServer's runtime for `backend` looks for when parameters.uri is
// not set, in its order ("xgboost": model.bst, model.json, model.ubj).
std::vector<std::string> MlserverModelFilenames(const std::string& backend);

}  // namespace ferry::repository
