// The entry point of the PyTorch module (see runtime/runtime_module.h).
#include "runtime/runtime_module.h"
#include "runtime/torch/torch_runtime.h"

FERRY_RUNTIME_MODULE(ferry::runtime::CreateTorchRuntime)
