#pragma once

#include <memory>

#include "core/result.h"
#include "runtime/registry.h"
#if FERRY_WITH_PYTHON
#include "runtime/python/python_runtime.h"
#endif

namespace ferry::cli {

// Every runtime compiled into this binary (by the FERRY_WITH_* CMake options), in the
// order the registry prefers them when a model file name is all there is to go by.
// Fails, naming the runtime, when one cannot start (e.g. a library too old).
struct BuiltinRuntimeOptions {
#if FERRY_WITH_PYTHON
  runtime::PythonRuntimeOptions python;  // for the Python worker-process runtimes
#endif
};
Result<std::unique_ptr<runtime::RuntimeRegistry>> BuiltinRuntimes(const BuiltinRuntimeOptions& options = {});

}  // namespace ferry::cli
