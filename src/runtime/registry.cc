#include "runtime/registry.h"

namespace ferry::runtime {

Result<Runtime*> RuntimeRegistry::Find(const inference::ModelConfig& config, const std::filesystem::path& version_dir,
                                       const std::filesystem::path& model_dir) const {
  if (!config.backend().empty() || !config.platform().empty()) {
    for (const auto& r : runtimes_)
      if (config.backend() == r->name() || config.platform() == r->platform()) return r.get();
    if (resolver_ && !config.backend().empty())
      return resolver_->Resolve(config.backend(), version_dir, model_dir.empty() ? version_dir.parent_path() : model_dir);
    return NotFound("no runtime for " +
                    (config.backend().empty() ? "platform '" + config.platform() + "'"
                                              : "backend '" + config.backend() + "'") +
                    " is built into this server");
  }
  std::error_code ec;
  std::string tried;
  for (const auto& r : runtimes_) {
    if (std::filesystem::exists(ModelFile(*r, config, version_dir), ec)) return r.get();
    for (const auto& name : r->accepted_filenames()) tried += (tried.empty() ? "" : ", ") + name;
  }
  return NotFound("the config names no platform or backend and " + version_dir.string() +
                  " holds none of the model files: " + tried);
}

std::filesystem::path RuntimeRegistry::ModelFile(const Runtime& runtime, const inference::ModelConfig& config,
                                                 const std::filesystem::path& version_dir) {
  if (!config.default_model_filename().empty()) return version_dir / config.default_model_filename();
  std::error_code ec;
  for (const auto& name : runtime.accepted_filenames())
    if (std::filesystem::exists(version_dir / name, ec)) return version_dir / name;
  return version_dir / runtime.default_filename();
}

}  // namespace ferry::runtime
