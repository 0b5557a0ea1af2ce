#pragma once

#include <filesystem>
#include <string>

#include "core/result.h"
#include "repository/model_config.pb.h"

// Reading a model's configuration in any of its forms into the one in-memory form,
// Triton's wire-compatible `inference::ModelConfig`, the first that exists:
//   1. <model>/config.pbtxt         Triton's protobuf text format
//   2. <model>/model.yaml           ferry's own format (docs/model-config.md)
//   3. <model>/model-settings.json  MLServer's (repository/mlserver_settings.h)
//   4. none                         an empty config that the runtime auto-completes
namespace ferry::repository {

using inference::ModelConfig;

// Reads the configuration of the model in `model_dir`, whose folder name is the model
// name. Errors name the file and, where the parser knows it, the line and field.
Result<ModelConfig> ReadModelConfig(const std::filesystem::path& model_dir);

// Parses config.pbtxt text.
Result<ModelConfig> ParseTritonConfig(const std::string& text);

// Parses model.yaml text.
Result<ModelConfig> ParseFerryYaml(const std::string& text);

// The config as JSON the way Triton's GET .../config prints it: proto field names,
// enum names, 64-bit integers as JSON numbers, default scalars included.
std::string ModelConfigToJson(const ModelConfig& config);

// Checks what every runtime relies on: names unique, dims rank >= 1 with -1 or
// positive sizes, known datatypes, max_batch_size >= 0.
Status ValidateModelConfig(const ModelConfig& config);

}  // namespace ferry::repository
