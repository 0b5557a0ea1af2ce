#include "server/monitored_model.h"

namespace ferry::server {

monitoring::MonitoredModel MonitoredModelFor(const std::string& model, int64_t version,
                                             const std::filesystem::path& model_dir,
                                             const inference::ModelConfig& config, const MonitoringDefaults& defaults) {
  monitoring::MonitoredModel m;
  m.model = model;
  m.version = std::to_string(version);
  m.model_dir = model_dir;
  for (const auto& [key, value] : defaults) m.settings[key] = value;
  constexpr std::string_view kPrefix = "monitoring.";
  for (const auto& [key, value] : config.parameters())
    if (key.size() > kPrefix.size() && key.compare(0, kPrefix.size(), kPrefix) == 0)
      m.settings[key.substr(kPrefix.size())] = value.string_value();
  return m;
}

}  // namespace ferry::server
