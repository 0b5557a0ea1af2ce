#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "core/result.h"
#include "runtime/runtime.h"

namespace ferry::runtime {

// The runtimes compiled into this binary, registered explicitly by cli/.
// Thread-safety: Register before serving; Find is then safe from any thread.
class RuntimeRegistry {
 public:
  void Register(std::unique_ptr<Runtime> runtime) { runtimes_.push_back(std::move(runtime)); }

  // Chooses the runtime for a model version: by config backend or platform when set,
  // otherwise by the model file found in `version_dir`. NOT_FOUND names what was
  // looked for.
  Result<Runtime*> Find(const inference::ModelConfig& config, const std::filesystem::path& version_dir) const;

  const std::vector<std::unique_ptr<Runtime>>& runtimes() const { return runtimes_; }

  // The model file `runtime` loads from `version_dir`: the config's
  // default_model_filename when set, else the first of the runtime's
  // accepted_filenames() that exists, else its default_filename() (which then does not
  // exist, for the caller to report).
  static std::filesystem::path ModelFile(const Runtime& runtime, const inference::ModelConfig& config,
                                         const std::filesystem::path& version_dir);

 private:
  std::vector<std::unique_ptr<Runtime>> runtimes_;
};

}  // namespace ferry::runtime
