#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/plugin/plugin_runtime.h"
#include "runtime/registry.h"

namespace ferry::runtime::plugin {

// Finds the plugin library for a backend no built-in runtime has: libferry_<backend>.so
// in the version folder, then the model folder, then the plugins folder (the server's
// --plugin-dir / FERRY_PLUGIN_DIR), the first that exists. A model may thus ship its
// own build of a plugin, and a server-wide one serves every other model. Each library
// path is opened once and stays open for the finder's life; a library that fails to
// open is not remembered, so fixing it and reloading the model retries.
// Thread-safety: Resolve is thread-safe.
class PluginFinder : public RuntimeResolver {
 public:
  // `plugin_dir` empty: no plugins folder.
  explicit PluginFinder(std::filesystem::path plugin_dir) : plugin_dir_(std::move(plugin_dir)) {}

  Result<Runtime*> Resolve(std::string_view backend, const std::filesystem::path& version_dir,
                           const std::filesystem::path& model_dir) override;

  // "libferry_<backend>.so"
  static std::string LibraryName(std::string_view backend);

  // One plugin library in a plugins folder, for `ferry runtimes`.
  struct Found {
    std::string backend;
    std::filesystem::path path;
    std::string abi_version;  // empty when it cannot load
    std::string error;        // why it cannot load; empty when it can
  };
  // Every libferry_<name>.so in `dir`, by name, each opened to check that it loads.
  static std::vector<Found> List(const std::filesystem::path& dir);

 private:
  const std::filesystem::path plugin_dir_;
  std::mutex mu_;
  std::map<std::filesystem::path, std::unique_ptr<PluginRuntime>> runtimes_;  // by library path; guarded by mu_
};

}  // namespace ferry::runtime::plugin
