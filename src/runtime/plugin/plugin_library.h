#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/result.h"
#include "ferry/plugin.h"

namespace ferry::runtime::plugin {

// The entry points of one plugin library (include/ferry/plugin.h). Required ones are
// never null; optional ones are null when the library does not export them.
struct PluginApi {
  decltype(&ferry_plugin_api_version) api_version = nullptr;
  decltype(&ferry_plugin_error_release) error_release = nullptr;
  decltype(&ferry_plugin_model_create) model_create = nullptr;
  decltype(&ferry_plugin_model_destroy) model_destroy = nullptr;
  decltype(&ferry_plugin_instance_create) instance_create = nullptr;
  decltype(&ferry_plugin_instance_destroy) instance_destroy = nullptr;
  decltype(&ferry_plugin_instance_execute) instance_execute = nullptr;
  // optional
  decltype(&ferry_plugin_initialize) initialize = nullptr;
  decltype(&ferry_plugin_finalize) finalize = nullptr;
  decltype(&ferry_plugin_model_autocomplete) model_autocomplete = nullptr;
  decltype(&ferry_plugin_instance_terminate) instance_terminate = nullptr;
};

// One plugin shared library, opened with dlopen(RTLD_NOW | RTLD_LOCAL), its ABI version
// checked and ferry_plugin_initialize run. The destructor runs ferry_plugin_finalize and
// dlcloses, so whoever holds model or instance handles of the library also holds a
// shared_ptr to it.
// Thread-safety: immutable after Open; api() may be used from any thread.
class PluginLibrary {
 public:
  // Opens `path`. Errors (UNAVAILABLE) name the library and the problem: dlopen's own
  // message, the missing required symbol, a major version other than the server's, a
  // minor version newer than the server's, or the message of a failed initialize.
  static Result<std::shared_ptr<PluginLibrary>> Open(const std::filesystem::path& path);
  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const PluginApi& api() const { return api_; }
  const std::filesystem::path& path() const { return path_; }
  // "1.0": the ABI version the plugin was built against.
  const std::string& abi_version() const { return abi_version_; }

  // Turns a plugin error into a Status carrying its message (prefixed with `what`),
  // releasing the error. Null is OK.
  Status Consume(FerryPluginError* error, const std::string& what) const;

 private:
  PluginLibrary(std::filesystem::path path, void* handle) : path_(std::move(path)), handle_(handle) {}

  const std::filesystem::path path_;
  void* handle_;  // owned: dlclose'd by the destructor
  PluginApi api_;
  std::string abi_version_;
  bool initialized_ = false;
};

}  // namespace ferry::runtime::plugin
