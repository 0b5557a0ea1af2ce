#include "runtime/module_runtime.h"

#include <dlfcn.h>

#include "core/clock.h"
#include "core/log.h"
#include "runtime/library_deps.h"
#include "runtime/runtime_module.h"

namespace ferry::runtime {
namespace fs = std::filesystem;

std::string ModuleFileName(const std::string& backend) { return "libferry_runtime_" + backend + ".so"; }

std::vector<fs::path> DefaultModuleDirs() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const fs::path bin = exe.parent_path();
  return {bin / "runtimes", bin.parent_path() / "lib" / "ferry" / "runtimes"};
}

ModuleRuntime::ModuleRuntime(ModuleSpec spec, std::vector<fs::path> search_dirs)
    : spec_(std::move(spec)), search_dirs_(std::move(search_dirs)) {}

std::string ModuleRuntime::version() const {
  if (Runtime* rt = loaded_.load(std::memory_order_acquire)) return rt->version();
  return spec_.built_version;
}

std::chrono::nanoseconds ModuleRuntime::load_time() const { return std::chrono::nanoseconds(load_ns_.load()); }

std::string ModuleRuntime::Unloadable(const std::string& why) const { return spec_.title + " unavailable: " + why; }

fs::path ModuleRuntime::FindModule() const {
  const std::string file = ModuleFileName(spec_.backend);
  std::error_code ec;
  for (const auto& dir : search_dirs_)
    if (fs::is_regular_file(dir / file, ec)) return dir / file;
  return {};
}

ModuleRuntime::Availability ModuleRuntime::Check() const {
  Availability a;
  const std::string file = ModuleFileName(spec_.backend);
  a.module = FindModule();
  if (a.module.empty()) {
    std::string where;
    for (const auto& dir : search_dirs_) where += (where.empty() ? "" : ", ") + dir.string();
    a.problem = "module " + file + " not found in " + (where.empty() ? "no folder" : where) +
                " (--runtime-dir or FERRY_RUNTIME_DIR name the folder that holds it)";
    return a;
  }
  auto missing = MissingLibraries(a.module);
  if (!missing.ok()) {
    a.problem = missing.status().message();
  } else if (!missing->empty()) {
    std::string libs;
    for (const auto& l : *missing) libs += (libs.empty() ? "" : ", ") + l;
    a.problem = "needs " + libs + ", not found on the library path: it comes from " + spec_.provided_by;
  }
  return a;
}

Result<Runtime*> ModuleRuntime::Load() {
  if (Runtime* rt = loaded_.load(std::memory_order_acquire)) return rt;
  std::lock_guard lock(mu_);
  if (runtime_) return runtime_.get();
  // Only the module's path is needed here: dlopen itself names a missing library, so
  // Check()'s scan of the module's dependencies would be work done twice.
  Availability where{FindModule(), ""};
  if (where.module.empty()) return Unavailable(Unloadable(Check().problem));
  const uint64_t start = NowNanos();
  dlerror();
  // RTLD_LOCAL: the framework's symbols stay out of the global scope, so two modules
  // (or a plugin) bundling different copies of a library cannot collide. The module
  // still binds ferry's own code against the executable, which exports it.
  void* handle = dlopen(where.module.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Unavailable(Unloadable("cannot load " + where.module.string() + ": " + (why ? why : "unknown dlopen error") +
                                  "; the framework library comes from " + spec_.provided_by));
  }
  // From here on the handle is never closed: frameworks (ORT, libtorch) keep threads
  // and atexit handlers that must not outlive their code.
  auto entry_fn = reinterpret_cast<const RuntimeModuleEntry* (*)()>(dlsym(handle, kRuntimeModuleSymbol));
  if (entry_fn == nullptr)
    return Unavailable(Unloadable(where.module.string() + " is not a ferry runtime module (no " +
                                  kRuntimeModuleSymbol + ")"));
  const RuntimeModuleEntry* entry = entry_fn();
  if (entry->interface_version != kRuntimeModuleInterface || std::string(entry->ferry_version) != FERRY_VERSION)
    return Unavailable(Unloadable(where.module.string() + " was built for ferry " + entry->ferry_version +
                                  " (module interface " + std::to_string(entry->interface_version) +
                                  "), this is ferry " + FERRY_VERSION + " (interface " +
                                  std::to_string(kRuntimeModuleInterface) + "): use the modules of this build"));
  auto created = entry->create();
  if (!created.ok()) return Unavailable(Unloadable(created.status().message()));
  // The binary chose this module for models by the spec's names: the module must agree.
  auto& rt = *created;
  if (rt->name() != spec_.backend || rt->platform() != spec_.platform || rt->accepted_filenames() != spec_.files)
    return Internal(Unloadable(where.module.string() + " serves backend '" + std::string(rt->name()) + "' / platform '" +
                               std::string(rt->platform()) + "', not the '" + spec_.backend + "' / '" +
                               spec_.platform + "' (and model files) this binary expects"));
  runtime_ = std::move(created).value();
  const uint64_t took = NowNanos() - start;
  load_ns_.store(static_cast<int64_t>(took));
  loaded_.store(runtime_.get(), std::memory_order_release);
  FERRY_LOG(kInfo, "runtime module loaded",
            ("runtime", spec_.backend)("version", runtime_->version())("module", where.module.string())(
                "load_ms", std::to_string(took / 1000000.0)));
  return runtime_.get();
}

Status ModuleRuntime::AutoComplete(const fs::path& model_file, inference::ModelConfig* config) {
  FERRY_ASSIGN_OR_RETURN(Runtime * rt, Load());
  return rt->AutoComplete(model_file, config);
}

Result<std::unique_ptr<ModelInstance>> ModuleRuntime::CreateInstance(const fs::path& model_file,
                                                                     const inference::ModelConfig& config,
                                                                     const InstanceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Runtime * rt, Load());
  return rt->CreateInstance(model_file, config, options);
}

}  // namespace ferry::runtime
