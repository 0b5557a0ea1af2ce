#include "cli/builtin_runtimes.h"

#include "runtime/module_runtime.h"

namespace ferry::cli {
namespace {

// The modules CMake built (src/runtime/*/CMakeLists.txt, ferry_runtime_module), with
// the names their runtimes answer to; ModuleRuntime checks them against the loaded
// runtime's own.
std::vector<runtime::ModuleSpec> BuiltModules() {
  std::vector<runtime::ModuleSpec> specs;
#if FERRY_MODULE_ONNXRUNTIME
  specs.push_back({"ONNX Runtime", "onnxruntime", "onnxruntime_onnx", {"model.onnx"}, FERRY_MODULE_ONNXRUNTIME_VERSION,
                   FERRY_MODULE_ONNXRUNTIME_PROVIDED_BY});
#endif
#if FERRY_MODULE_XGBOOST
  specs.push_back({"XGBoost runtime", "xgboost", "xgboost", {"model.json", "model.ubj", "xgboost.model"},
                   FERRY_MODULE_XGBOOST_VERSION, FERRY_MODULE_XGBOOST_PROVIDED_BY});
#endif
#if FERRY_MODULE_PYTORCH
  specs.push_back({"PyTorch runtime", "pytorch", "pytorch_libtorch", {"model.pt"}, FERRY_MODULE_PYTORCH_VERSION,
                   FERRY_MODULE_PYTORCH_PROVIDED_BY});
#endif
  return specs;
}

}  // namespace

Result<std::unique_ptr<runtime::RuntimeRegistry>> BuiltinRuntimes(const BuiltinRuntimeOptions& options) {
  auto registry = std::make_unique<runtime::RuntimeRegistry>();
  const auto dirs = options.module_dirs.empty() ? runtime::DefaultModuleDirs() : options.module_dirs;
  for (auto& spec : BuiltModules()) registry->Register(std::make_unique<runtime::ModuleRuntime>(std::move(spec), dirs));
#if FERRY_WITH_PYTHON  // CMake option FERRY_WITH_PYTHON; these need nothing at start
  for (auto& rt : runtime::CreatePythonRuntimes(options.python)) registry->Register(std::move(rt));
#endif
  return registry;
}

}  // namespace ferry::cli
