#include "runtime/plugin/plugin_library.h"

#include <dlfcn.h>

namespace ferry::runtime::plugin {
namespace {

template <typename Fn>
void Resolve(void* handle, const char* symbol, Fn* out) {
  *out = reinterpret_cast<Fn>(dlsym(handle, symbol));
}

}  // namespace

Result<std::shared_ptr<PluginLibrary>> PluginLibrary::Open(const std::filesystem::path& path) {
  const std::string where = "plugin library " + path.string();
  dlerror();
  // RTLD_LOCAL: two plugins may define the same helper symbols without colliding, and a
  // plugin cannot bind to the server's own symbols by accident.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Unavailable("cannot load " + where + ": " + (why ? why : "unknown dlopen error"));
  }
  std::shared_ptr<PluginLibrary> lib(new PluginLibrary(path, handle));
  PluginApi& a = lib->api_;
  Resolve(handle, "ferry_plugin_api_version", &a.api_version);
  Resolve(handle, "ferry_plugin_error_release", &a.error_release);
  Resolve(handle, "ferry_plugin_model_create", &a.model_create);
  Resolve(handle, "ferry_plugin_model_destroy", &a.model_destroy);
  Resolve(handle, "ferry_plugin_instance_create", &a.instance_create);
  Resolve(handle, "ferry_plugin_instance_destroy", &a.instance_destroy);
  Resolve(handle, "ferry_plugin_instance_execute", &a.instance_execute);
  Resolve(handle, "ferry_plugin_initialize", &a.initialize);
  Resolve(handle, "ferry_plugin_finalize", &a.finalize);
  Resolve(handle, "ferry_plugin_model_autocomplete", &a.model_autocomplete);
  Resolve(handle, "ferry_plugin_instance_terminate", &a.instance_terminate);
  const std::pair<const char*, bool> required[] = {
      {"ferry_plugin_api_version", a.api_version != nullptr},
      {"ferry_plugin_error_release", a.error_release != nullptr},
      {"ferry_plugin_model_create", a.model_create != nullptr},
      {"ferry_plugin_model_destroy", a.model_destroy != nullptr},
      {"ferry_plugin_instance_create", a.instance_create != nullptr},
      {"ferry_plugin_instance_destroy", a.instance_destroy != nullptr},
      {"ferry_plugin_instance_execute", a.instance_execute != nullptr},
  };
  std::string missing;
  for (const auto& [symbol, found] : required)
    if (!found) missing += (missing.empty() ? "" : ", ") + std::string(symbol);
  if (!missing.empty()) return Unavailable(where + " lacks the required symbol(s) " + missing);

  uint32_t major = 0, minor = 0;
  a.api_version(&major, &minor);
  lib->abi_version_ = std::to_string(major) + "." + std::to_string(minor);
  const std::string server = std::to_string(FERRY_PLUGIN_API_VERSION_MAJOR) + "." +
                             std::to_string(FERRY_PLUGIN_API_VERSION_MINOR);
  if (major != FERRY_PLUGIN_API_VERSION_MAJOR)
    return Unavailable(where + " was built for plugin ABI " + lib->abi_version_ + ", this server speaks " + server +
                       " (the major versions must match)");
  if (minor > FERRY_PLUGIN_API_VERSION_MINOR)
    return Unavailable(where + " was built for plugin ABI " + lib->abi_version_ + ", newer than this server's " +
                       server + " (rebuild it against this server's include/ferry/plugin.h)");
  if (a.initialize != nullptr)
    FERRY_RETURN_IF_ERROR(lib->Consume(a.initialize(), where + ": ferry_plugin_initialize failed"));
  lib->initialized_ = true;
  return lib;
}

PluginLibrary::~PluginLibrary() {
  if (initialized_ && api_.finalize != nullptr) api_.finalize();
  dlclose(handle_);
}

Status PluginLibrary::Consume(FerryPluginError* error, const std::string& what) const {
  if (error == nullptr) return Status::Ok();
  std::string message = what + ": " + (error->message ? error->message : "no message");
  const FerryErrorCode code = error->code;
  api_.error_release(error);
  switch (code) {
    case FERRY_ERROR_INVALID_ARGUMENT: return InvalidArgument(std::move(message));
    case FERRY_ERROR_UNAVAILABLE: return Unavailable(std::move(message));
    case FERRY_ERROR_UNIMPLEMENTED: return Unimplemented(std::move(message));
    case FERRY_ERROR_CANCELLED: return Cancelled(std::move(message));
    case FERRY_ERROR_INTERNAL: break;
  }
  return Internal(std::move(message));
}

}  // namespace ferry::runtime::plugin
