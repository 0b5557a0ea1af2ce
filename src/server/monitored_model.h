#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "monitoring/record_consumer.h"
#include "repository/model_config.pb.h"

namespace ferry::server {

// Server-wide monitoring settings (from the command line), keyed as in
// MonitoredModel::settings ("payload_log.sink").
using MonitoringDefaults = std::map<std::string, std::string, std::less<>>;

// How monitoring sees a loaded version: the config's parameters whose keys start with
// "monitoring." (prefix removed) laid over `defaults`. model.yaml's `monitoring:` block
// and model-settings.json's parameters.extra become such parameters when read.
monitoring::MonitoredModel MonitoredModelFor(const std::string& model, int64_t version,
                                             const std::filesystem::path& model_dir,
                                             const inference::ModelConfig& config, const MonitoringDefaults& defaults);

}  // namespace ferry::server
