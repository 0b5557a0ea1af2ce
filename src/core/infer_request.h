#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/parameters.h"
#include "core/result.h"
#include "core/tensor.h"
#include "core/trace_context.h"

namespace ferry {

// An output the client asked for, with its per-output parameters (e.g. binary_data).
struct RequestedOutput {
  std::string name;
  Parameters parameters;
};

// Which frontend a request came through; metrics carry it as the `protocol` label.
enum class Frontend { kHttp = 0, kGrpc = 1 };
inline constexpr int kFrontendCount = 2;
inline std::string_view FrontendName(Frontend f) { return f == Frontend::kGrpc ? "grpc" : "http"; }

// A protocol-neutral inference request. Frontends decode into it; the server
// validates it against the model config before any runtime sees it.
struct InferRequest {
  std::string model_name;
  std::string model_version;  // empty: the latest ready version
  std::string id;
  Parameters parameters;
  std::vector<Tensor> inputs;
  std::vector<RequestedOutput> outputs;  // empty: every model output
  Frontend frontend = Frontend::kHttp;
  // True once the client has gone away (connection closed, call cancelled): the request
  // is then dropped from the queue, and an execution nobody waits for is stopped.
  // Empty: never. Must be cheap and callable from any thread until the reply is sent.
  std::function<bool()> cancelled;
  // The caller's W3C trace context (a `traceparent` header or gRPC metadata), if any.
  std::optional<TraceContext> trace_parent;
  // The caller (a frontend's IO thread) lets the server run a model version measured
  // as tiny on the calling thread (ModelManagerOptions::inline_execution_us): the answer's
  // callback then runs before Infer returns. False: model work always runs on workers.
  bool may_run_inline = false;
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  Parameters parameters;
  std::vector<Tensor> outputs;
};

// Called exactly once per request, on a worker thread (or on the caller, before Infer
// returns: for an early failure, a cache hit or an inline execution); must not block.
using InferCallback = std::function<void(Result<InferResponse>)>;

}  // namespace ferry
