#include "cli/builtin_runtimes.h"

#include "runtime/onnx/onnx_runtime.h"
#if FERRY_WITH_XGBOOST
#include "runtime/xgboost/xgboost_runtime.h"
#endif
#if FERRY_WITH_TORCH
#include "core/log.h"
#include "runtime/torch/torch_runtime.h"
#endif

namespace ferry::cli {
namespace {

Status Add(runtime::RuntimeRegistry* registry, Result<std::unique_ptr<runtime::Runtime>> created, const char* what) {
  if (!created.ok()) return Unavailable(std::string(what) + " unavailable: " + created.status().message());
  registry->Register(std::move(created).value());
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<runtime::RuntimeRegistry>> BuiltinRuntimes(const BuiltinRuntimeOptions& options) {
  auto registry = std::make_unique<runtime::RuntimeRegistry>();
  FERRY_RETURN_IF_ERROR(Add(registry.get(), runtime::CreateOnnxRuntime(), "ONNX Runtime"));
#if FERRY_WITH_XGBOOST  // CMake option FERRY_WITH_XGBOOST
  FERRY_RETURN_IF_ERROR(Add(registry.get(), runtime::CreateXgboostRuntime(), "XGBoost runtime"));
#endif
#if FERRY_WITH_TORCH  // CMake option FERRY_WITH_TORCH
  // Optional: a server whose libtorch cannot start still serves every other runtime.
  if (auto torch = runtime::CreateTorchRuntime(); torch.ok()) {
    registry->Register(std::move(torch).value());
  } else {
    FERRY_LOG(kError, "PyTorch runtime unavailable", ("error", torch.status().message()));
  }
#endif
#if FERRY_WITH_PYTHON  // CMake option FERRY_WITH_PYTHON; these need nothing at start
  for (auto& rt : runtime::CreatePythonRuntimes(options.python)) registry->Register(std::move(rt));
#else
  (void)options;
#endif
  return registry;
}

}  // namespace ferry::cli
