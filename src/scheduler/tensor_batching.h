#pragma once

#include <vector>

#include "core/result.h"
#include "core/tensor.h"

// Joining requests into one batch and splitting the batch's outputs back, along the
// first (batch) dimension. Pure functions.
namespace ferry::scheduler {

// Concatenates tensors of one input across requests. REQUIRES: same name, datatype and
// non-batch dimensions (the batcher only groups compatible requests). One copy.
Tensor ConcatBatch(const std::vector<const Tensor*>& parts);

// Splits `batch` into pieces of `sizes[i]` rows, in order, without copying: the pieces
// borrow the batch buffer through one shared keepalive that takes `batch` over (move it
// in to spare a copy of its name and shape). BYTES pieces are located by walking the
// elements. INTERNAL error when the output's first dimension is not the sum of `sizes`.
Result<std::vector<Tensor>> SplitBatch(Tensor batch, const std::vector<int64_t>& sizes);

}  // namespace ferry::scheduler
