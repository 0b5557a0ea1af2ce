#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/infer_request.h"
#include "core/parameters.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/trace_context.h"

namespace ferry::monitoring {

// One answered request as the monitoring consumers (payload log, drift sketches, the
// feedback join) see it: a value that shares the request's and response's tensor bytes
// (Tensor copies are reference-counted), so handing it over copies no tensor data.
struct InferenceRecord {
  std::string model;
  std::string version;     // the version that answered (or was asked for, if none did)
  std::string request_id;  // the request's `id` as answered to the client; may be empty
  Frontend frontend = Frontend::kHttp;
  uint64_t received_wall_ms = 0;  // wall clock (ms since the epoch) when the server got it
  uint64_t duration_ns = 0;       // from receipt to answer
  StatusCode code = StatusCode::kOk;
  std::string error;  // the answer's error message when code is not kOk
  Parameters parameters;        // the request's parameters
  std::vector<Tensor> inputs;   // as the model saw them; empty when the body did not decode
  std::vector<Tensor> outputs;  // as answered; empty on failure
  std::optional<TraceContext> trace_parent;
};

// Where the request path hands answered requests to monitoring. The server calls Wants
// on every request of a loaded model and Offer once per answered request it wanted, on
// whichever thread answers it (IO or worker threads).
// Thread-safety: implementations must be thread-safe, and neither call may block or do
// IO: Offer queues the record (bounded) or drops it and counts the drop.
class InferenceTap {
 public:
  virtual ~InferenceTap() = default;
  // Whether requests of this model version are monitored at all; cheap.
  virtual bool Wants(std::string_view model, std::string_view version) const = 0;
  // Takes one record; never blocks.
  virtual void Offer(InferenceRecord record) = 0;
};

}  // namespace ferry::monitoring
