#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "repository/model_config.pb.h"

// The model repository on disk: <repo>/<model>/<version>/<file>, across one or more
// repository roots. Pure functions over the file system; no loading.
namespace ferry::repository {

// Model name -> model folder, across every root. A name present in two roots is an
// error naming both folders. Hidden folders and plain files are ignored.
Result<std::map<std::string, std::filesystem::path>> ScanRepositories(
    const std::vector<std::filesystem::path>& roots);

// The numeric version folders of a model, ascending. As Triton, names with a leading
// zero or non-digits are ignored.
std::vector<int64_t> ScanVersions(const std::filesystem::path& model_dir);

// Where each version of a model keeps its files, by version number: the numeric
// version folders (ScanVersions); or, when there are none and the model folder holds
// MLServer's model-settings.json (MLServer's layout has no version folders), the model
// folder itself as the single version that `config`'s specific version policy names
// (as ReadModelConfig sets it from parameters.version), else version 1.
std::map<int64_t, std::filesystem::path> VersionFolders(const std::filesystem::path& model_dir,
                                                        const inference::ModelConfig& config);

// The versions a policy serves out of `available` (ascending in and out). Default
// (no policy set) is latest 1.
std::vector<int64_t> SelectVersions(const inference::ModelVersionPolicy& policy,
                                    const std::vector<int64_t>& available);

// A cheap fingerprint of every file under `dir` (paths, sizes, modification times),
// used by poll mode to notice a changed model.
std::string Fingerprint(const std::filesystem::path& dir);

}  // namespace ferry::repository
