#pragma once

#include <memory>

#include "core/result.h"
#include "runtime/runtime.h"

// The internal contract between the `ferry` binary and a runtime module: a shared
// library (libferry_runtime_<backend>.so) that holds one heavy framework runtime
// (ONNX Runtime, libtorch, XGBoost) and is dlopen'ed the first time a model needs it.
//
// This is NOT the plugin ABI (include/ferry/plugin.h): modules are C++ built in the same
// tree as the binary, share its types (Runtime, Tensor, Status) and resolve ferry's own
// code against the executable, which exports it. A module from another build is
// refused by the version check below.
namespace ferry::runtime {

// Bumped whenever Runtime, ModelInstance, Tensor or Status change layout.
// 2: ModelInstance::Explain.
inline constexpr int kRuntimeModuleInterface = 2;

struct RuntimeModuleEntry {
  int interface_version;      // kRuntimeModuleInterface of the module's build
  const char* ferry_version;  // FERRY_VERSION of the module's build
  // Creates the module's runtime; called once, by the thread that loaded the module.
  Result<std::unique_ptr<Runtime>> (*create)();
};

// The one symbol a module exports.
inline constexpr const char* kRuntimeModuleSymbol = "ferry_runtime_module";

}  // namespace ferry::runtime

// Defines the module's entry point around `factory` (a function returning
// Result<std::unique_ptr<Runtime>>). Used once, in the module's own module.cc.
#define FERRY_RUNTIME_MODULE(factory)                                                                   \
  extern "C" __attribute__((visibility("default"))) const ::ferry::runtime::RuntimeModuleEntry*         \
  ferry_runtime_module() {                                                                              \
    static const ::ferry::runtime::RuntimeModuleEntry entry{::ferry::runtime::kRuntimeModuleInterface, \
                                                            FERRY_VERSION, &(factory)};                 \
    return &entry;                                                                                      \
  }
