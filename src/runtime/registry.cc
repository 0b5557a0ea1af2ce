#include "runtime/registry.h"

namespace ferry::runtime {

Result<Runtime*> RuntimeRegistry::Find(const inference::ModelConfig& config,
                                       const std::filesystem::path& version_dir) const {
  if (!config.backend().empty() || !config.platform().empty()) {
    for (const auto& r : runtimes_)
      if (config.backend() == r->name() || config.platform() == r->platform()) return r.get();
    return NotFound("no runtime for " +
                    (config.backend().empty() ? "platform '" + config.platform() + "'"
                                              : "backend '" + config.backend() + "'") +
                    " is built into this server");
  }
  std::error_code ec;
  std::string tried;
  for (const auto& r : runtimes_) {
    std::string file = config.default_model_filename().empty() ? std::string(r->default_filename())
                                                               : config.default_model_filename();
    if (std::filesystem::exists(version_dir / file, ec)) return r.get();
    tried += (tried.empty() ? "" : ", ") + std::string(r->default_filename());
  }
  return NotFound("the config names no platform or backend and " + version_dir.string() +
                  " holds none of the model files: " + tried);
}

}  // namespace ferry::runtime
