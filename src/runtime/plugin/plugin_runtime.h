#pragma once

#include <memory>
#include <string>

#include "runtime/plugin/plugin_library.h"
#include "runtime/runtime.h"

namespace ferry::runtime::plugin {

// The Runtime behind one plugin library (backend "<name>" served by
// libferry_<name>.so; see include/ferry/plugin.h for the ABI).
//
// The model file a plugin gets (FerryModelArgs.path) is the version folder, or the
// configured default_model_filename inside it. AutoComplete calls the optional
// ferry_plugin_model_autocomplete. The instances of one model version share one
// plugin model handle: the first CreateInstance creates it and the last instance to go
// destroys it (two loads of the same files and config while both are alive, as during
// a reload, share it too). Each instance holds the library open.
//
// Thread-safety: the Runtime's methods may run concurrently; an instance's Execute is
// called by one thread at a time and Terminate from another thread during an Execute,
// as the ABI promises plugins.
class PluginRuntime : public Runtime {
 public:
  PluginRuntime(std::string name, std::shared_ptr<PluginLibrary> library);
  ~PluginRuntime() override;

  std::string_view name() const override { return name_; }
  std::string_view platform() const override { return name_; }
  // Empty: a plugin reads its whole version folder, so the "model file" is the folder.
  std::string_view default_filename() const override { return ""; }
  std::string version() const override { return "plugin ABI " + library_->abi_version(); }

  Status AutoComplete(const std::filesystem::path& model_file, inference::ModelConfig* config) override;
  Result<std::unique_ptr<ModelInstance>> CreateInstance(const std::filesystem::path& model_file,
                                                        const inference::ModelConfig& config,
                                                        const InstanceOptions& options) override;

  const PluginLibrary& library() const { return *library_; }

 private:
  class SharedModels;

  const std::string name_;
  const std::shared_ptr<PluginLibrary> library_;
  std::unique_ptr<SharedModels> models_;
};

}  // namespace ferry::runtime::plugin
