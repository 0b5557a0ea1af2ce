#pragma once

#include <string_view>
#include <vector>

#include "core/parameters.h"
#include "core/tensor.h"

namespace ferry::monitoring {

// A part of monitoring that runs on the request path, after the model answered and
// before the answer leaves: it may read the request's inputs and add response
// parameters (the outlier score). The server calls Annotates on every successful
// answer and Annotate on those it names, on the answering thread.
// Thread-safety: implementations must be thread-safe and quick (no IO, no waiting).
class ResponseAnnotator {
 public:
  virtual ~ResponseAnnotator() = default;
  virtual bool Annotates(std::string_view model, std::string_view version) const = 0;
  virtual void Annotate(std::string_view model, std::string_view version, const std::vector<Tensor>& inputs,
                        Parameters* response_parameters) = 0;
};

}  // namespace ferry::monitoring
