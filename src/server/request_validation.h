#pragma once

#include <string>
#include <vector>

#include "core/infer_request.h"
#include "repository/model_config.pb.h"

namespace ferry::server {

// What validation learned about a request that the execution path needs.
struct ValidatedRequest {
  int64_t batch_size = 1;                 // 1 for models without batching
  std::vector<std::string> output_names;  // requested outputs, or every model output
  uint32_t priority = 0;                  // request parameter "priority" (0: default level)
  uint64_t timeout_us = 0;                // request parameter "timeout" (0: none)
};

// Checks `request` against the model's completed config: every input known, present
// once, of the declared datatype and a compatible shape (with the batch dimension
// when max_batch_size > 0, the same batch size for all inputs, and no larger than
// max_batch_size), byte sizes consistent, and every requested output known.
// Applies input reshapes in place. Errors are INVALID_ARGUMENT naming the tensor.
Result<ValidatedRequest> ValidateRequest(const inference::ModelConfig& config, InferRequest* request);

// The shape an output reports to the client: [batch] + dims when the config reshapes
// it, otherwise the shape the runtime produced.
void ApplyOutputReshape(const inference::ModelConfig& config, int64_t batch_size, Tensor* output);

}  // namespace ferry::server
