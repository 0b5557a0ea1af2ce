#pragma once

#include <memory>

#include "runtime/runtime.h"

namespace ferry::runtime {

// The PyTorch runtime (backend "pytorch", platform "pytorch_libtorch", file model.pt:
// Triton's names), serving TorchScript modules on libtorch (Debian's libtorch-dev,
// 1.13) on the CPU. One torch::jit::Module per model instance, loaded onto the CPU.
//
// TorchScript files carry no tensor names, datatypes or shapes, so the model config
// must declare every input and output (AutoComplete refuses a config without them,
// saying what to add). Inputs feed forward()'s arguments by name when every config
// input is named like an argument, else by a Triton-style __N suffix (INPUT__0), else
// in config order (torchrt::PlanInputs); outputs are found in the returned Tensor,
// tuple or list by __N suffix or config order, or in a returned Dict[str, Tensor] by
// name (torchrt::PlanOutputs). Inputs are wrapped around the request's bytes without a
// copy (torch::from_blob; a misaligned buffer is copied); outputs keep their torch
// tensor alive until the response is sent.
//
// Execute runs forward() under c10::InferenceMode. Intra-op threads: the instance's
// worker thread sets its own OpenMP team size (at::set_num_threads on that thread,
// before each run) to the config parameter intra_op_thread_count, else the server's
// per-instance budget; see the .cc for why that is per instance and not global.
// Errors raised in forward() (torch's checks, the model's own raise or assert) become
// INVALID_ARGUMENT with torch's message, without the TorchScript traceback; running
// out of memory becomes INTERNAL.
//
// Thread-safety: the Runtime's methods may run concurrently; each instance's Execute
// is called by one thread at a time. Terminate is a no-op: libtorch cannot stop a
// forward() in progress.
Result<std::unique_ptr<Runtime>> CreateTorchRuntime();

}  // namespace ferry::runtime
