#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"
#include "runtime/runtime.h"

namespace ferry::runtime {

// What the binary knows of a runtime module without loading it (see runtime_module.h):
// enough to choose it for a model, list it, and explain why it cannot load.
struct ModuleSpec {
  std::string title;               // for messages: "PyTorch runtime"
  std::string backend;             // config backend name; the module is libferry_runtime_<backend>.so
  std::string platform;            // config platform name
  std::vector<std::string> files;  // model file names it loads, preferred first (never empty)
  std::string built_version;       // framework version the module was built against ("1.13.1")
  std::string provided_by;         // where the framework library comes from ("Debian package libtorch1.13")
};

// The module file name for `backend`: "libferry_runtime_<backend>.so".
std::string ModuleFileName(const std::string& backend);

// The folders searched for modules when none is given: <bin>/runtimes beside the
// binary (a build tree), then <bin>/../lib/ferry/runtimes (an install prefix).
std::vector<std::filesystem::path> DefaultModuleDirs();

// A Runtime that stands for a module until a model needs it. name(), platform() and the
// file names come from the spec, so choosing a runtime for a model loads nothing; the
// first AutoComplete or CreateInstance loads the module (dlopen RTLD_NOW | RTLD_LOCAL,
// never closed) and delegates to the runtime it creates. A failed load returns
// UNAVAILABLE naming the module, the library the loader could not open and where that
// library comes from, and is tried again on the next call, so installing the missing
// library and reloading the model works without a restart.
// Thread-safety: every method may be called from any thread; concurrent first uses
// load the module once.
class ModuleRuntime : public Runtime {
 public:
  ModuleRuntime(ModuleSpec spec, std::vector<std::filesystem::path> search_dirs);

  std::string_view name() const override { return spec_.backend; }
  std::string_view platform() const override { return spec_.platform; }
  std::string_view default_filename() const override { return spec_.files.front(); }
  std::vector<std::string> accepted_filenames() const override { return spec_.files; }
  // The loaded framework's version, else the one the module was built against.
  std::string version() const override;

  Status AutoComplete(const std::filesystem::path& model_file, inference::ModelConfig* config) override;
  Result<std::unique_ptr<ModelInstance>> CreateInstance(const std::filesystem::path& model_file,
                                                        const inference::ModelConfig& config,
                                                        const InstanceOptions& options) override;

  // Loads the module now if it is not loaded yet. The runtime stays valid for this
  // object's life.
  Result<Runtime*> Load();
  bool loaded() const { return loaded_.load(std::memory_order_acquire) != nullptr; }
  // Wall time the successful load took (dlopen with the framework's own libraries and
  // static initialisers, plus the runtime's creation); zero before.
  std::chrono::nanoseconds load_time() const;

  // Without loading anything: the module file found (empty when none) and, when it
  // looks unloadable, why (module not found, a direct library missing). An empty
  // `problem` does not prove the load will succeed; Load() does.
  struct Availability {
    std::filesystem::path module;
    std::string problem;
  };
  Availability Check() const;
  // The module file in the search folders, or empty (Check() without the library scan).
  std::filesystem::path FindModule() const;

  const ModuleSpec& spec() const { return spec_; }

 private:
  std::string Unloadable(const std::string& why) const;

  const ModuleSpec spec_;
  const std::vector<std::filesystem::path> search_dirs_;
  std::mutex mu_;                           // serialises loads
  std::unique_ptr<Runtime> runtime_;        // guarded by mu_; set once
  std::atomic<Runtime*> loaded_{nullptr};   // runtime_.get() once loaded: the lock-free fast path
  std::atomic<int64_t> load_ns_{0};
};

}  // namespace ferry::runtime
