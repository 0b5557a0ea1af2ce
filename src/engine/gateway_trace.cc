#include "engine/gateway_trace.h"

#include "monitoring/request_tracer.h"

namespace ferry::engine {

GatewayTrace::GatewayTrace(const GatewayTracing* tracing, std::string_view traceparent) {
  if (tracing == nullptr || tracing->exporter == nullptr) return;
  exporter_ = tracing->exporter;
  std::optional<TraceContext> caller;
  if (!traceparent.empty()) caller = TraceContext::Parse(traceparent);
  context_.sampled = monitoring::ShouldSample(caller, tracing->sample_rate);
  context_.trace_id = caller ? caller->trace_id : TraceContext::NewTraceId();
  context_.span_id = TraceContext::NewSpanId();
  if (caller) parent_ = caller->span_id;
  if (context_.sampled) start_ns_ = monitoring::WallNanos();
}

std::string GatewayTrace::StartAttempt(std::string_view replica) {
  if (!context_.sampled) return context_.Format();
  Attempt a;
  a.span_id = TraceContext::NewSpanId();
  a.replica = std::string(replica);
  a.start_ns = monitoring::WallNanos();
  TraceContext upstream = context_;
  upstream.span_id = a.span_id;
  attempts_.push_back(std::move(a));
  return upstream.Format();
}

void GatewayTrace::EndAttempt(std::string_view error) {
  if (!context_.sampled || attempts_.empty() || attempts_.back().end_ns != 0) return;
  attempts_.back().end_ns = monitoring::WallNanos();
  attempts_.back().error = std::string(error);
}

void GatewayTrace::Finish(const Answer& answer) {
  if (!sampled() || finished_) return;
  finished_ = true;
  exporter_->AddAll(Spans(answer));
}

std::vector<monitoring::Span> GatewayTrace::Spans(const Answer& answer) const {
  if (!sampled()) return {};
  const uint64_t end = monitoring::WallNanos();
  auto tag = [&](monitoring::Span& s) {
    s.trace_id = context_.trace_id;
    s.attributes = {{"ferry.protocol", std::string(answer.protocol)}, {"ferry.deployment", std::string(answer.deployment)}};
    if (!answer.model.empty()) s.attributes.emplace_back("ferry.model_name", std::string(answer.model));
    if (!answer.revision.empty()) s.attributes.emplace_back("ferry.revision", std::string(answer.revision));
  };
  std::vector<monitoring::Span> spans;
  for (const Attempt& a : attempts_) {
    monitoring::Span s;
    tag(s);
    s.span_id = a.span_id;
    s.parent_span_id = context_.span_id;
    s.name = "upstream";
    s.kind = monitoring::Span::Kind::kClient;
    s.start_ns = a.start_ns;
    s.end_ns = a.end_ns != 0 ? a.end_ns : end;
    s.attributes.emplace_back("ferry.replica", a.replica);
    if (!a.error.empty()) {
      s.error = true;
      s.status_message = a.error;
    }
    spans.push_back(std::move(s));
  }
  monitoring::Span g;
  tag(g);
  g.span_id = context_.span_id;
  g.parent_span_id = parent_;
  g.name = "GatewayRequest";
  g.kind = monitoring::Span::Kind::kServer;
  g.start_ns = start_ns_;
  g.end_ns = end;
  g.int_attributes.emplace_back(std::string(answer.status_attribute), answer.status);
  g.int_attributes.emplace_back("ferry.attempts", static_cast<int64_t>(attempts_.size()));
  if (answer.failed) {
    g.error = true;
    g.status_message = std::string(answer.error);
  }
  spans.push_back(std::move(g));
  return spans;
}

}  // namespace ferry::engine
