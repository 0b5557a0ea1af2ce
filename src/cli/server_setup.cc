#include "cli/server_setup.h"

#include "cli/builtin_runtimes.h"
#include "core/log.h"
#include "runtime/plugin/plugin_finder.h"

namespace ferry::cli {
namespace po = boost::program_options;

void AddModelOptions(po::options_description& desc, const std::string& env) {
  const std::string repo_env = env + "MODEL_REPOSITORY, ':'-separated]";
  auto e = [&env](const char* name) { return " [" + env + name + "]"; };
  // clang-format off
  desc.add_options()
    ("model-repository", po::value<std::vector<std::string>>()->composing(),
       ("model repository folder; repeat for several [" + repo_env).c_str())
    ("runtime-dir", po::value<std::string>(), ("folder of the runtime modules (libferry_runtime_<backend>.so), loaded when a model needs one; default: <bin>/runtimes, then <bin>/../lib/ferry/runtimes" + e("RUNTIME_DIR")).c_str())
    ("plugin-dir", po::value<std::string>(), ("folder of plugin libraries libferry_<backend>.so, searched after the model's own folders" + e("PLUGIN_DIR")).c_str())
    ("default-max-batch-size", po::value<int>()->default_value(1024), ("max_batch_size of a model without a config whose runtime finds it batches (every tensor with a dynamic first dimension); 0 keeps the runtime's own (ONNX Runtime: 4, as Triton)" + e("DEFAULT_MAX_BATCH_SIZE")).c_str())
    ("intra-op-threads", po::value<int>()->default_value(0), ("runtime threads per model instance, 0 = cores / instances" + e("INTRA_OP_THREADS")).c_str())
    ("python-executable", po::value<std::string>()->default_value("python3"), ("interpreter for Python models whose config names none (parameter python_executable or python_env)" + e("PYTHON_EXECUTABLE")).c_str())
    ("python-sdk-path", po::value<std::string>()->default_value(""), ("folder holding the ferry_sdk package for Python workers; default: found beside the binary or in its source checkout, 'none' to rely on the interpreter's own" + e("PYTHON_SDK_PATH")).c_str());
  // clang-format on
}

Status ModelOptionsFromFlags(const po::variables_map& vm, server::ModelManagerOptions* options) {
  if (vm.count("model-repository")) {
    for (const auto& r : vm["model-repository"].as<std::vector<std::string>>()) {
      // The environment form may list several folders separated by ':'.
      size_t start = 0;
      while (start <= r.size()) {
        size_t colon = r.find(':', start);
        std::string part = r.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        if (!part.empty()) options->repositories.emplace_back(part);
        if (colon == std::string::npos) break;
        start = colon + 1;
      }
    }
  }
  if (options->repositories.empty()) return InvalidArgument("--model-repository is required");
  options->intra_op_threads = vm["intra-op-threads"].as<int>();
  options->default_max_batch_size = vm["default-max-batch-size"].as<int>();
  if (options->default_max_batch_size < 0)
    return InvalidArgument("--default-max-batch-size must be 0 or more, not " +
                           std::to_string(options->default_max_batch_size));
  return Status::Ok();
}

Result<std::unique_ptr<runtime::RuntimeRegistry>> RuntimesFromFlags(const po::variables_map& vm) {
  BuiltinRuntimeOptions runtime_options;
  if (vm.count("runtime-dir")) runtime_options.module_dirs = {vm["runtime-dir"].as<std::string>()};
#if FERRY_WITH_PYTHON  // CMake option FERRY_WITH_PYTHON
  runtime_options.python.python_executable = vm["python-executable"].as<std::string>();
  const std::string sdk = vm["python-sdk-path"].as<std::string>();
  if (sdk.empty()) runtime_options.python.sdk_path = runtime::DefaultPythonSdkPath();
  else if (sdk != "none") runtime_options.python.sdk_path = sdk;
  FERRY_LOG(kInfo, "python workers",
            ("python", runtime_options.python.python_executable)(
                "sdk_path", runtime_options.python.sdk_path.empty() ? "(the interpreter's own)"
                                                                    : runtime_options.python.sdk_path.string()));
#endif
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<runtime::RuntimeRegistry> runtimes, BuiltinRuntimes(runtime_options));
  for (const auto& rt : runtimes->runtimes())
    FERRY_LOG(kInfo, "runtime registered", ("runtime", rt->name())("version", rt->version()));
  const std::string plugin_dir = vm.count("plugin-dir") ? vm["plugin-dir"].as<std::string>() : "";
  runtimes->SetResolver(std::make_unique<runtime::plugin::PluginFinder>(plugin_dir));
  if (!plugin_dir.empty()) FERRY_LOG(kInfo, "plugins folder", ("path", plugin_dir));
  return runtimes;
}

Status CheckModelLoaded(const server::Server& server, const std::string& model, const std::string& version) {
  auto ready = server.ModelReady(model, version);
  if (ready.ok() && *ready) return Status::Ok();
  std::string reason = ready.ok() ? "not ready" : ready.status().message();
  for (const auto& e : server.RepositoryIndex(false))
    if (e.name == model && !e.reason.empty()) reason = e.reason;
  return Unavailable("model '" + model + "' did not load: " + reason);
}

}  // namespace ferry::cli
