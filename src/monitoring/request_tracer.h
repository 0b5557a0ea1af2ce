#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/trace_context.h"
#include "monitoring/span_exporter.h"

namespace ferry::monitoring {

// Whether a request is traced: a caller's traceparent decides by its sampled flag (so a
// caller that traces is always traced, one that does not never is); without one, a draw
// at `rate`. Thread-safe.
bool ShouldSample(const std::optional<TraceContext>& parent, double rate);
// Now on the wall clock, Unix ns (what spans carry).
uint64_t WallNanos();

// What the server knows of one traced request when it finishes. Times are monotonic
// (NowNanos); the tracer maps them to the wall clock from the request's start.
struct TracedRequest {
  TraceContext context;              // trace id, and the span id of InferRequest
  std::array<uint8_t, 8> parent{};   // the caller's span (zero: a new trace)
  uint64_t start_mono = 0, start_wall = 0;
  // Set once the request reached a model's queue:
  bool submitted = false;
  uint64_t submit_mono = 0, queue_ns = 0;
  uint64_t compute_input_ns = 0, compute_infer_ns = 0, compute_output_ns = 0;
  int64_t batch_size = 0, executed_batch_size = 0;
};

// Decides which requests are traced and turns a finished one into spans, named as
// Triton's OpenTelemetry traces are: `InferRequest` (kind SERVER; a child of the
// client's span when the request carried a W3C traceparent), under it a span named
// after the model (the request's time at the model: queue and execution), and under
// that `queue` and `compute` (with events COMPUTE_INPUT_END and COMPUTE_OUTPUT_START).
// Attributes: ferry.model_name, ferry.model_version, ferry.request_id, ferry.protocol,
// ferry.batch_size, ferry.executed_batch_size; a failed request's spans carry the error.
// Sampling: a request with a traceparent follows its sampled flag (so a caller that
// traces is always traced, one that does not is never); others at `sample_rate`.
// Thread-safety: thread-safe (the exporter queues).
class RequestTracer {
 public:
  // exporter: not owned, must outlive the tracer.
  RequestTracer(double sample_rate, SpanExporter* exporter) : rate_(sample_rate), exporter_(exporter) {}

  // A trace for a new request, or nullopt when it is not sampled.
  std::optional<TracedRequest> Begin(const std::optional<TraceContext>& parent) const;
  void Finish(const TracedRequest& t, const std::string& model, const std::string& version,
              const std::string& request_id, std::string_view protocol, const Status& status) const;

 private:
  const double rate_;
  SpanExporter* exporter_;
};

}  // namespace ferry::monitoring
