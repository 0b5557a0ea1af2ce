#include "runtime/plugin/plugin_finder.h"

#include <algorithm>

namespace ferry::runtime::plugin {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "libferry_";
constexpr std::string_view kSuffix = ".so";

// A backend names a file, so it must not be able to name one elsewhere.
bool ValidBackendName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

}  // namespace

std::string PluginFinder::LibraryName(std::string_view backend) {
  return std::string(kPrefix) + std::string(backend) + std::string(kSuffix);
}

Result<Runtime*> PluginFinder::Resolve(std::string_view backend, const fs::path& version_dir, const fs::path& model_dir) {
  if (!ValidBackendName(backend))
    return InvalidArgument("backend '" + std::string(backend) +
                           "' is not built into this server, and as a plugin name it may hold only letters, digits, "
                           "'_' and '-'");
  const std::string file = LibraryName(backend);
  std::vector<fs::path> places = {version_dir, model_dir};
  if (!plugin_dir_.empty()) places.push_back(plugin_dir_);
  std::error_code ec;
  fs::path found;
  for (const auto& dir : places)
    if (fs::is_regular_file(dir / file, ec)) {
      found = fs::weakly_canonical(dir / file, ec);
      break;
    }
  if (found.empty())
    return NotFound("backend '" + std::string(backend) + "' is not built into this server and no plugin " + file +
                    " is in " + version_dir.string() + (model_dir != version_dir ? ", " + model_dir.string() : "") +
                    (plugin_dir_.empty() ? " (no plugins folder: --plugin-dir / FERRY_PLUGIN_DIR is not set)"
                                         : " or the plugins folder " + plugin_dir_.string()));
  std::lock_guard lock(mu_);
  if (auto it = runtimes_.find(found); it != runtimes_.end()) return it->second.get();
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<PluginLibrary> library, PluginLibrary::Open(found));
  auto runtime = std::make_unique<PluginRuntime>(std::string(backend), std::move(library));
  Runtime* raw = runtime.get();
  runtimes_.emplace(found, std::move(runtime));
  return raw;
}

std::vector<PluginFinder::Found> PluginFinder::List(const fs::path& dir) {
  std::vector<Found> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string n = entry.path().filename().string();
    if (n.size() <= kPrefix.size() + kSuffix.size() || !n.starts_with(kPrefix) || !n.ends_with(kSuffix)) continue;
    Found f;
    f.backend = n.substr(kPrefix.size(), n.size() - kPrefix.size() - kSuffix.size());
    f.path = entry.path();
    auto library = PluginLibrary::Open(entry.path());
    if (library.ok()) f.abi_version = (*library)->abi_version();
    else f.error = library.status().message();
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(), [](const Found& a, const Found& b) { return a.backend < b.backend; });
  return out;
}

}  // namespace ferry::runtime::plugin
