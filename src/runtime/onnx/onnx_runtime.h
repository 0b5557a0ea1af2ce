#pragma once

#include <memory>

#include "runtime/runtime.h"

namespace ferry::runtime {

// The ONNX Runtime runtime (backend "onnxruntime", platform "onnxruntime_onnx", file
// model.onnx), on ORT's C API. One OrtEnv per process, shared by every session; one
// session per model instance. Inputs are bound to ORT without copying when their
// buffer is suitably aligned; outputs stay in ORT's buffers until the response is sent.
//
// Config parameters read (Triton's names): intra_op_thread_count,
// inter_op_thread_count; optimization.graph.level (-1 basic, 1 extended, otherwise
// all, as Triton's ORT backend). A session given neither parameter nor an explicit
// --intra-op-threads runs on the environment's shared intra-op pool (one per process,
// sized to the available cores) instead of a pool of its own.
//
// Returns nullptr-free errors: Create fails when the ORT library's API version is older
// than the header's.
Result<std::unique_ptr<Runtime>> CreateOnnxRuntime();

}  // namespace ferry::runtime
