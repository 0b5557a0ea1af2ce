#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/trace_context.h"
#include "monitoring/span_exporter.h"

namespace ferry::engine {

// The engine's tracing: where the gateways' spans go and how requests without a
// traceparent are sampled. exporter null: tracing off (a client's traceparent then goes
// to the replica as it came).
struct GatewayTracing {
  monitoring::SpanExporter* exporter = nullptr;  // not owned; outlives the gateways
  double sample_rate = 0.01;
};

// The gateway's part of one request's trace. When tracing is on, the gateway takes part
// in the trace as a W3C intermediary: a SERVER span `GatewayRequest` (admission to
// answer, a child of the caller's span), and under it a CLIENT span `upstream` for each
// try at a replica (two after a retry); the replica gets the try's span as the parent in
// `traceparent`, so its own InferRequest hangs under it. A request that is not sampled
// gets an unsampled traceparent, so the replica does not trace it either (the whole
// trace, or none of it).
// Thread-safety: none; owned by one exchange (REST) or call (gRPC), on one thread.
class GatewayTrace {
 public:
  GatewayTrace() = default;
  // `traceparent`: the client's header or metadata value, empty when it sent none.
  GatewayTrace(const GatewayTracing* tracing, std::string_view traceparent);

  // Tracing is on in this engine: the traceparent sent upstream is the gateway's.
  bool on() const { return exporter_ != nullptr; }
  bool sampled() const { return on() && context_.sampled; }

  // A try at `replica` starts: the traceparent to send it (a new CLIENT span when sampled;
  // the same unsampled context on every try otherwise). REQUIRES: on().
  std::string StartAttempt(std::string_view replica);
  // The try ended: with an answer (error empty; the answer may itself be an error the
  // replica gave), or failed without one.
  void EndAttempt(std::string_view error);

  // The request's answer, once; exports the spans when sampled. `status`: the HTTP status
  // (REST) or the gRPC code (gRPC), named by `status_attribute`; `error`: non-empty for a
  // failed answer (the span's status message).
  struct Answer {
    std::string_view protocol;  // "http" or "grpc"
    std::string_view deployment, revision, model;
    std::string_view status_attribute;  // "http.response.status_code" or "rpc.grpc.status_code"
    int64_t status = 0;
    bool failed = false;
    std::string_view error;
  };
  void Finish(const Answer& answer);
  // The spans Finish exports for `answer` (the tries', then GatewayRequest); empty when
  // not sampled.
  std::vector<monitoring::Span> Spans(const Answer& answer) const;

 private:
  struct Attempt {
    std::array<uint8_t, 8> span_id{};
    std::string replica;
    uint64_t start_ns = 0, end_ns = 0;
    std::string error;
  };

  monitoring::SpanExporter* exporter_ = nullptr;
  TraceContext context_;              // trace id, the GatewayRequest span id, sampled
  std::array<uint8_t, 8> parent_{};   // the caller's span (zero: the trace starts here)
  uint64_t start_ns_ = 0;
  std::vector<Attempt> attempts_;
  bool finished_ = false;
};

}  // namespace ferry::engine
