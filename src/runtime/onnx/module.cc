// The entry point of the ONNX Runtime module (see runtime/runtime_module.h).
#include "runtime/onnx/onnx_runtime.h"
#include "runtime/runtime_module.h"

FERRY_RUNTIME_MODULE(ferry::runtime::CreateOnnxRuntime)
