#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "monitoring/inference_tap.h"
#include "monitoring/payload_log/cloud_event.h"

namespace ferry::monitoring::payload_log {

inline constexpr std::string_view kRequestEventType = "org.ferry.inference.request";
inline constexpr std::string_view kResponseEventType = "org.ferry.inference.response";

// Which events of a request are logged (as KServe's logger mode).
enum class LogMode { kAll, kRequest, kResponse };

struct EventOptions {
  // The producer; an event's source is "<source>/models/<model>/versions/<version>".
  std::string source = "ferry://localhost";
  // Raw bytes written of each tensor; a larger tensor keeps its first elements, and
  // says so (below).
  size_t max_tensor_bytes = 64u << 10;
  // The `sampledrate` extension (CloudEvents' sampling extension: this event stands
  // for N) when the log samples 1 in N; 1 omits it.
  int64_t sampled_rate = 1;
  LogMode mode = LogMode::kAll;
};

// The CloudEvents of one answered request: a request event (the V2 JSON request: id,
// parameters, inputs; no data when the body did not decode) and a response event (the
// V2 JSON response, or {"error": message} for a failure), each with its own new id and
// the extensions
//   requestid, model, modelversion, protocol ("http" | "grpc"), traceparent (when the
//   request carried one), sampledrate (when sampled), truncated (true when a tensor
//   was cut), and on the response statuscode (the HTTP status of the answer, also for
//   gRPC: 200, 400, 404, 500, 503, ...) and durationus (receipt to answer).
// A truncated tensor keeps its real shape, carries its first elements in `data` and
// the parameters {"truncated": true, "element_count": <all elements>}.
std::vector<CloudEvent> RecordEvents(const InferenceRecord& record, const EventOptions& options);

}  // namespace ferry::monitoring::payload_log
