#include "monitoring/span_exporter.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <map>
#include <mutex>

#include "monitoring/request_tracer.h"

namespace ferry::monitoring {
namespace {

TEST(OtlpJsonTest, EncodesTheSpecsFields) {
  Span s;
  s.trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
  s.span_id = {1, 2, 3, 4, 5, 6, 7, 8};
  s.parent_span_id = {0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
  s.name = "InferRequest";
  s.kind = Span::Kind::kServer;
  s.start_ns = 1700000000000000000ull;
  s.end_ns = 1700000000000123456ull;
  s.attributes = {{"ferry.model_name", "add_sub"}};
  s.int_attributes = {{"ferry.batch_size", 4}};
  s.events = {{"COMPUTE_INPUT_END", 1700000000000000100ull}};
  s.error = true;
  s.status_message = "bad input";
  SpanExporterOptions o;
  o.service_name = "ferry-test";
  rapidjson::Document d;
  d.Parse(EncodeOtlpJson({s}, o).c_str());
  ASSERT_FALSE(d.HasParseError());
  const auto& rs = d["resourceSpans"][0];
  EXPECT_STREQ(rs["resource"]["attributes"][0]["key"].GetString(), "service.name");
  EXPECT_STREQ(rs["resource"]["attributes"][0]["value"]["stringValue"].GetString(), "ferry-test");
  const auto& span = rs["scopeSpans"][0]["spans"][0];
  EXPECT_STREQ(span["traceId"].GetString(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_STREQ(span["spanId"].GetString(), "0102030405060708");
  EXPECT_STREQ(span["parentSpanId"].GetString(), "00f067aa0ba902b7");
  EXPECT_EQ(span["kind"].GetInt(), 2);
  EXPECT_STREQ(span["startTimeUnixNano"].GetString(), "1700000000000000000");
  EXPECT_STREQ(span["endTimeUnixNano"].GetString(), "1700000000000123456");
  EXPECT_STREQ(span["attributes"][1]["value"]["intValue"].GetString(), "4");
  EXPECT_STREQ(span["events"][0]["name"].GetString(), "COMPUTE_INPUT_END");
  EXPECT_EQ(span["status"]["code"].GetInt(), 2);
  EXPECT_STREQ(span["status"]["message"].GetString(), "bad input");
  // A root span has no parentSpanId field.
  s.parent_span_id = {};
  d.Parse(EncodeOtlpJson({s}, o).c_str());
  EXPECT_FALSE(d["resourceSpans"][0]["scopeSpans"][0]["spans"][0].HasMember("parentSpanId"));
}

struct Counts {
  std::mutex mu;
  std::map<std::string, uint64_t> n;
  std::function<void(const char*, uint64_t)> Fn() {
    return [this](const char* k, uint64_t v) {
      std::lock_guard<std::mutex> lock(mu);
      n[k] += v;
    };
  }
};

TEST(SpanExporterTest, AnUnreachableReceiverFailsTheBatchAndAFullQueueDrops) {
  Counts c;
  SpanExporterOptions o;
  o.endpoint = "http://127.0.0.1:1/v1/traces";  // nothing listens on port 1
  o.max_queue = 3;
  o.max_retries = 1;
  o.schedule_delay = std::chrono::milliseconds(50);
  SpanExporter e(o, c.Fn());
  // Not started: the queue fills; the fourth and fifth are dropped.
  for (int i = 0; i < 5; ++i) e.Add(Span{});
  e.Start();
  e.Stop();  // exports what is queued (and fails: refused, retried once)
  EXPECT_EQ(c.n["dropped"], 2u);
  EXPECT_EQ(c.n["failed"], 3u);
  EXPECT_EQ(c.n["exported"], 0u);
}

TEST(RequestTracerTest, SamplingFollowsTheParentThenTheRate) {
  SpanExporterOptions o;
  o.endpoint = "http://127.0.0.1:1/v1/traces";
  SpanExporter e(o, nullptr);
  RequestTracer never(0.0, &e), always(1.0, &e);
  auto parent = TraceContext::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto t = never.Begin(parent);
  ASSERT_TRUE(t.has_value()) << "a sampled caller is traced whatever the rate";
  EXPECT_EQ(t->context.trace_id, parent->trace_id);
  EXPECT_EQ(t->parent, parent->span_id);
  EXPECT_NE(t->context.span_id, parent->span_id);
  parent->sampled = false;
  EXPECT_FALSE(always.Begin(parent).has_value()) << "a caller that does not sample is not traced";
  EXPECT_FALSE(never.Begin(std::nullopt).has_value());
  auto fresh = always.Begin(std::nullopt);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->parent, (std::array<uint8_t, 8>{}));
}

}  // namespace
}  // namespace ferry::monitoring
