#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "core/result.h"
#include "runtime/runtime.h"

namespace ferry::runtime {

// Finds runtimes that are not compiled in (plugin libraries) by backend name, for a
// config whose backend no built-in runtime has.
// Thread-safety: Resolve may be called from several threads at once.
class RuntimeResolver {
 public:
  virtual ~RuntimeResolver() = default;
  // The runtime for `backend` of the model in `model_dir` (version files in
  // `version_dir`); it stays valid for the resolver's life. NOT_FOUND says where it
  // was looked for; other errors say why what was found cannot serve.
  virtual Result<Runtime*> Resolve(std::string_view backend, const std::filesystem::path& version_dir,
                                   const std::filesystem::path& model_dir) = 0;
};

// The runtimes compiled into this binary, registered explicitly by cli/, and an
// optional resolver for the rest.
// Thread-safety: Register and SetResolver before serving; Find is then safe from any
// thread.
class RuntimeRegistry {
 public:
  void Register(std::unique_ptr<Runtime> runtime) { runtimes_.push_back(std::move(runtime)); }
  void SetResolver(std::unique_ptr<RuntimeResolver> resolver) { resolver_ = std::move(resolver); }

  // Chooses the runtime for a model version: by config backend or platform when set
  // (a backend no built-in runtime has goes to the resolver), otherwise by the model
  // file found in `version_dir`. NOT_FOUND names what was looked for. `model_dir`
  // empty means the parent of `version_dir`.
  Result<Runtime*> Find(const inference::ModelConfig& config, const std::filesystem::path& version_dir,
                        const std::filesystem::path& model_dir = {}) const;

  const std::vector<std::unique_ptr<Runtime>>& runtimes() const { return runtimes_; }

  // The model file `runtime` loads from `version_dir`: the config's
  // default_model_filename when set, else the first of the runtime's
  // accepted_filenames() that exists, else its default_filename() (which then does not
  // exist, for the caller to report).
  static std::filesystem::path ModelFile(const Runtime& runtime, const inference::ModelConfig& config,
                                         const std::filesystem::path& version_dir);

 private:
  std::vector<std::unique_ptr<Runtime>> runtimes_;
  std::unique_ptr<RuntimeResolver> resolver_;  // may be null
};

}  // namespace ferry::runtime
