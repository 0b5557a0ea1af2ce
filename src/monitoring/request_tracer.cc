#include "monitoring/request_tracer.h"

#include <random>

#include "core/clock.h"

namespace ferry::monitoring {
namespace {

bool Draw(double rate) {
  if (rate >= 1) return true;
  if (rate <= 0) return false;
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0, 1)(rng) < rate;
}

}  // namespace

uint64_t WallNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

bool ShouldSample(const std::optional<TraceContext>& parent, double rate) {
  return parent ? parent->sampled : Draw(rate);
}

std::optional<TracedRequest> RequestTracer::Begin(const std::optional<TraceContext>& parent) const {
  if (!ShouldSample(parent, rate_)) return std::nullopt;
  TracedRequest t;
  t.context.trace_id = parent ? parent->trace_id : TraceContext::NewTraceId();
  t.context.span_id = TraceContext::NewSpanId();
  t.context.sampled = true;
  if (parent) t.parent = parent->span_id;
  t.start_mono = NowNanos();
  t.start_wall = WallNanos();
  return t;
}

void RequestTracer::Finish(const TracedRequest& t, const std::string& model, const std::string& version,
                           const std::string& request_id, std::string_view protocol, const Status& status) const {
  const uint64_t end_mono = NowNanos();
  auto wall = [&](uint64_t mono) { return t.start_wall + (mono - t.start_mono); };
  auto tag = [&](Span& s) {
    s.trace_id = t.context.trace_id;
    s.attributes = {{"ferry.model_name", model}, {"ferry.protocol", std::string(protocol)}};
    if (!version.empty()) s.attributes.emplace_back("ferry.model_version", version);
    if (!request_id.empty()) s.attributes.emplace_back("ferry.request_id", request_id);
    if (!status.ok()) {
      s.error = true;
      s.status_message = status.message();
    }
  };
  std::vector<Span> spans;
  Span req;
  tag(req);
  req.span_id = t.context.span_id;
  req.parent_span_id = t.parent;
  req.name = "InferRequest";
  req.kind = Span::Kind::kServer;
  req.start_ns = t.start_wall;
  req.end_ns = wall(end_mono);
  if (t.batch_size > 0) req.int_attributes.emplace_back("ferry.batch_size", t.batch_size);
  if (t.submitted) {
    const uint64_t compute_start = t.submit_mono + t.queue_ns;
    const uint64_t compute_end = compute_start + t.compute_input_ns + t.compute_infer_ns + t.compute_output_ns;
    Span m;
    tag(m);
    m.span_id = TraceContext::NewSpanId();
    m.parent_span_id = req.span_id;
    m.name = model;
    m.start_ns = wall(t.submit_mono);
    m.end_ns = wall(std::max(compute_end, t.submit_mono + t.queue_ns));
    Span q;
    tag(q);
    q.span_id = TraceContext::NewSpanId();
    q.parent_span_id = m.span_id;
    q.name = "queue";
    q.start_ns = m.start_ns;
    q.end_ns = wall(compute_start);
    spans.push_back(std::move(q));
    if (compute_end > compute_start) {
      Span c;
      tag(c);
      c.span_id = TraceContext::NewSpanId();
      c.parent_span_id = m.span_id;
      c.name = "compute";
      c.start_ns = wall(compute_start);
      c.end_ns = wall(compute_end);
      c.events = {{"COMPUTE_INPUT_END", wall(compute_start + t.compute_input_ns)},
                  {"COMPUTE_OUTPUT_START", wall(compute_start + t.compute_input_ns + t.compute_infer_ns)}};
      if (t.executed_batch_size > 0) c.int_attributes.emplace_back("ferry.executed_batch_size", t.executed_batch_size);
      spans.push_back(std::move(c));
    }
    spans.push_back(std::move(m));
  }
  spans.push_back(std::move(req));
  exporter_->AddAll(std::move(spans));
}

}  // namespace ferry::monitoring
