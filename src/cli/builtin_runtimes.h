#pragma once

#include <memory>

#include "core/result.h"
#include "runtime/registry.h"

namespace ferry::cli {

// Every runtime compiled into this binary (by the FERRY_WITH_* CMake options), in the
// order the registry prefers them when a model file name is all there is to go by.
// Fails, naming the runtime, when one cannot start (e.g. a library too old).
Result<std::unique_ptr<runtime::RuntimeRegistry>> BuiltinRuntimes();

}  // namespace ferry::cli
