#include "engine/gateway_trace.h"

#include <gtest/gtest.h>

namespace ferry::engine {
namespace {

// Never started: spans added to it stay queued (nothing here exports).
monitoring::SpanExporter* Exporter() {
  static auto* e = new monitoring::SpanExporter({"http://127.0.0.1:9/v1/traces"}, nullptr);
  return e;
}

constexpr const char* kCaller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr const char* kQuietCaller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

GatewayTrace::Answer Ok() { return {"http", "dep", "v1", "m", "http.response.status_code", 200, false, ""}; }

TEST(GatewayTrace, OffWithoutAnExporter) {
  GatewayTracing off;
  GatewayTrace t(&off, kCaller);
  EXPECT_FALSE(t.on());
  EXPECT_FALSE(t.sampled());
  EXPECT_TRUE(t.Spans(Ok()).empty());
}

TEST(GatewayTrace, EachTryIsAClientSpanUnderTheGatewaySpanUnderTheCaller) {
  GatewayTracing on{Exporter(), 0};
  GatewayTrace t(&on, kCaller);
  ASSERT_TRUE(t.sampled());
  const auto first = TraceContext::Parse(t.StartAttempt("dep/v1/0"));
  t.EndAttempt("connect: Connection refused");
  const auto second = TraceContext::Parse(t.StartAttempt("dep/v1/1"));
  t.EndAttempt({});
  ASSERT_TRUE(first && second);
  EXPECT_TRUE(first->sampled && second->sampled);
  EXPECT_NE(first->span_id, second->span_id);
  const auto caller = TraceContext::Parse(kCaller);
  EXPECT_EQ(first->trace_id, caller->trace_id);

  const auto spans = t.Spans(Ok());
  ASSERT_EQ(spans.size(), 3u);
  const monitoring::Span& g = spans[2];
  EXPECT_EQ(g.name, "GatewayRequest");
  EXPECT_EQ(g.kind, monitoring::Span::Kind::kServer);
  EXPECT_EQ(g.parent_span_id, caller->span_id);
  EXPECT_FALSE(g.error);
  EXPECT_EQ(spans[0].name, "upstream");
  EXPECT_EQ(spans[0].kind, monitoring::Span::Kind::kClient);
  EXPECT_EQ(spans[0].span_id, first->span_id);
  EXPECT_EQ(spans[0].parent_span_id, g.span_id);
  EXPECT_TRUE(spans[0].error);
  EXPECT_EQ(spans[0].status_message, "connect: Connection refused");
  EXPECT_EQ(spans[1].span_id, second->span_id);
  EXPECT_FALSE(spans[1].error);
  for (const auto& s : spans) {
    EXPECT_EQ(s.trace_id, caller->trace_id);
    EXPECT_LE(g.start_ns, s.start_ns);
    EXPECT_LE(s.end_ns, g.end_ns);
  }
  bool attempts = false;
  for (const auto& [k, v] : g.int_attributes)
    if (k == "ferry.attempts") attempts = v == 2;
  EXPECT_TRUE(attempts);
}

TEST(GatewayTrace, AnUnsampledRequestTellsTheReplicaSoAndMakesNoSpan) {
  GatewayTracing on{Exporter(), 1};  // a caller's flag wins over the rate
  GatewayTrace t(&on, kQuietCaller);
  EXPECT_TRUE(t.on());
  EXPECT_FALSE(t.sampled());
  const auto sent = TraceContext::Parse(t.StartAttempt("dep/v1/0"));
  ASSERT_TRUE(sent);
  EXPECT_FALSE(sent->sampled);
  EXPECT_EQ(sent->trace_id, TraceContext::Parse(kQuietCaller)->trace_id);
  EXPECT_TRUE(t.Spans(Ok()).empty());

  GatewayTracing never{Exporter(), 0};
  GatewayTrace fresh(&never, "");
  const auto made = TraceContext::Parse(fresh.StartAttempt("dep/v1/0"));
  ASSERT_TRUE(made);  // a new, unsampled context: the replica's own rate does not apply
  EXPECT_FALSE(made->sampled);
}

TEST(GatewayTrace, NoCallerOrAMalformedOneStartsATraceWhenSampled) {
  GatewayTracing always{Exporter(), 1};
  for (const char* header : {"", "00-zz-yy-01"}) {
    GatewayTrace t(&always, header);
    ASSERT_TRUE(t.sampled()) << header;
    t.StartAttempt("dep/v1/0");
    t.EndAttempt({});
    auto a = Ok();
    a.status = 503;
    a.failed = true;
    a.error = R"({"error":"no ready replica"})";
    const auto spans = t.Spans(a);
    ASSERT_EQ(spans.size(), 2u);
    EXPECT_EQ(spans[1].parent_span_id, (std::array<uint8_t, 8>{}));  // a root span
    EXPECT_TRUE(spans[1].error);
    EXPECT_EQ(spans[1].status_message, a.error);
  }
}

}  // namespace
}  // namespace ferry::engine
