#include "repository/repository.h"

#include <algorithm>

#include "repository/mlserver_settings.h"

namespace ferry::repository {
namespace fs = std::filesystem;

Result<std::map<std::string, fs::path>> ScanRepositories(const std::vector<fs::path>& roots) {
  std::map<std::string, fs::path> models;
  for (const auto& root : roots) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return NotFound("model repository '" + root.string() + "' is not a directory");
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.' || !entry.is_directory(ec)) continue;
      auto [it, inserted] = models.emplace(name, entry.path());
      if (!inserted)
        return InvalidArgument("model '" + name + "' appears in two repositories: " + it->second.string() + " and " +
                               entry.path().string());
    }
    if (ec) return Unavailable("cannot list model repository '" + root.string() + "': " + ec.message());
  }
  return models;
}

std::vector<int64_t> ScanVersions(const fs::path& model_dir) {
  std::vector<int64_t> versions;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    std::string n = entry.path().filename().string();
    if (!entry.is_directory(ec) || n.empty() || n.size() > 18 || n[0] == '0') continue;
    if (!std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    versions.push_back(std::stoll(n));
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

std::map<int64_t, fs::path> VersionFolders(const fs::path& model_dir, const inference::ModelConfig& config) {
  std::map<int64_t, fs::path> folders;
  for (int64_t v : ScanVersions(model_dir)) folders.emplace(v, model_dir / std::to_string(v));
  std::error_code ec;
  if (folders.empty() && fs::exists(model_dir / kMlserverSettingsFile, ec)) {
    const auto& specific = config.version_policy().specific().versions();
    folders.emplace(specific.empty() ? 1 : specific[0], model_dir);
  }
  return folders;
}

std::vector<int64_t> SelectVersions(const inference::ModelVersionPolicy& policy,
                                    const std::vector<int64_t>& available) {
  switch (policy.policy_choice_case()) {
    case inference::ModelVersionPolicy::kAll:
      return available;
    case inference::ModelVersionPolicy::kSpecific: {
      std::vector<int64_t> out;
      for (int64_t v : available)
        if (std::find(policy.specific().versions().begin(), policy.specific().versions().end(), v) !=
            policy.specific().versions().end())
          out.push_back(v);
      return out;
    }
    case inference::ModelVersionPolicy::kLatest:
    case inference::ModelVersionPolicy::POLICY_CHOICE_NOT_SET:
      break;
  }
  size_t n = policy.has_latest() ? policy.latest().num_versions() : 1;
  if (n == 0) n = 1;
  n = std::min(n, available.size());
  return std::vector<int64_t>(available.end() - static_cast<long>(n), available.end());
}

std::string Fingerprint(const fs::path& dir) {
  std::vector<std::string> items;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code e2;
    auto st = it->symlink_status(e2);
    std::string item = fs::relative(it->path(), dir, e2).string();
    if (fs::is_regular_file(st)) {
      item += ':' + std::to_string(fs::file_size(it->path(), e2));
      item += ':' + std::to_string(fs::last_write_time(it->path(), e2).time_since_epoch().count());
    }
    items.push_back(std::move(item));
  }
  std::sort(items.begin(), items.end());
  std::string fp;
  for (auto& i : items) fp += i + '\n';
  return fp;
}

}  // namespace ferry::repository
