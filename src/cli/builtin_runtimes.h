#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "core/result.h"
#include "runtime/registry.h"
#if FERRY_WITH_PYTHON
#include "runtime/python/python_runtime.h"
#endif

namespace ferry::cli {

struct BuiltinRuntimeOptions {
  // Folders searched for runtime modules; empty: runtime::DefaultModuleDirs().
  std::vector<std::filesystem::path> module_dirs;
#if FERRY_WITH_PYTHON
  runtime::PythonRuntimeOptions python;  // for the Python worker-process runtimes
#endif
};

// Every runtime this build has, in the order the registry prefers them when a model
// file name is all there is to go by: the modules built (ONNX Runtime, XGBoost,
// PyTorch, by the FERRY_WITH_* CMake options) as runtime::ModuleRuntime, which load
// nothing until a model needs them, then the Python worker-process runtimes.
// Creating the registry loads no framework library and starts no thread.
Result<std::unique_ptr<runtime::RuntimeRegistry>> BuiltinRuntimes(const BuiltinRuntimeOptions& options = {});

}  // namespace ferry::cli
