#include "monitoring/payload_log/payload_events.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstring>
#include <set>

namespace ferry::monitoring::payload_log {
namespace {

Tensor Fp32(std::string name, std::vector<float> values) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = DataType::kFp32;
  t.shape = {1, static_cast<int64_t>(values.size())};
  t.Own(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return t;
}

const CloudEvent::Value* Ext(const CloudEvent& e, const std::string& name) {
  for (const auto& [n, v] : e.extensions)
    if (n == name) return &v;
  return nullptr;
}

rapidjson::Document Parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

InferenceRecord Success() {
  InferenceRecord r;
  r.model = "iris";
  r.version = "2";
  r.request_id = "req-7";
  r.received_wall_ms = 1796144584000ull;
  r.duration_ns = 2500000;  // 2.5 ms
  r.parameters["priority"] = int64_t{1};
  r.inputs.push_back(Fp32("x", {5.1f, 3.5f, 1.4f, 0.2f}));
  r.outputs.push_back(Fp32("probabilities", {0.9f, 0.05f, 0.05f}));
  return r;
}

TEST(PayloadEventsTest, ASuccessGivesARequestAndAResponseEventJoinedByRequestId) {
  auto events = RecordEvents(Success(), EventOptions{});
  ASSERT_EQ(events.size(), 2u);
  const CloudEvent& req = events[0];
  const CloudEvent& resp = events[1];
  EXPECT_EQ(req.type, "org.ferry.inference.request");
  EXPECT_EQ(resp.type, "org.ferry.inference.response");
  EXPECT_NE(req.id, resp.id) << "CloudEvents ids are unique per event (KServe reuses them)";
  EXPECT_EQ(req.source, "ferry://localhost/models/iris/versions/2");
  EXPECT_EQ(req.time_ms, 1796144584000ull);
  EXPECT_EQ(resp.time_ms, 1796144584002ull);
  for (const auto* e : {&req, &resp}) {
    EXPECT_EQ(std::get<std::string>(*Ext(*e, "requestid")), "req-7");
    EXPECT_EQ(std::get<std::string>(*Ext(*e, "model")), "iris");
    EXPECT_EQ(std::get<std::string>(*Ext(*e, "modelversion")), "2");
    EXPECT_EQ(std::get<std::string>(*Ext(*e, "protocol")), "http");
    EXPECT_EQ(Ext(*e, "sampledrate"), nullptr);
    EXPECT_EQ(Ext(*e, "truncated"), nullptr);
    for (const auto& [name, v] : e->extensions) EXPECT_TRUE(ValidExtensionName(name)) << name;
  }
  EXPECT_EQ(Ext(req, "statuscode"), nullptr);
  EXPECT_EQ(std::get<int64_t>(*Ext(resp, "statuscode")), 200);
  EXPECT_EQ(std::get<int64_t>(*Ext(resp, "durationus")), 2500);

  auto rd = Parse(req.data);
  EXPECT_STREQ(rd["id"].GetString(), "req-7");
  EXPECT_EQ(rd["parameters"]["priority"].GetInt64(), 1);
  ASSERT_EQ(rd["inputs"].Size(), 1u);
  EXPECT_STREQ(rd["inputs"][0]["name"].GetString(), "x");
  EXPECT_STREQ(rd["inputs"][0]["datatype"].GetString(), "FP32");
  EXPECT_EQ(rd["inputs"][0]["shape"][1].GetInt(), 4);
  EXPECT_FLOAT_EQ(rd["inputs"][0]["data"][0].GetFloat(), 5.1f);
  auto sd = Parse(resp.data);
  EXPECT_STREQ(sd["model_name"].GetString(), "iris");
  EXPECT_STREQ(sd["model_version"].GetString(), "2");
  EXPECT_STREQ(sd["id"].GetString(), "req-7");
  EXPECT_FLOAT_EQ(sd["outputs"][0]["data"][0].GetFloat(), 0.9f);
}

TEST(PayloadEventsTest, FailuresCarryTheirStatusAndError) {
  InferenceRecord r = Success();
  r.outputs.clear();
  r.code = StatusCode::kInvalidArgument;
  r.error = "input 'x': expected 4 features, got 3";
  r.frontend = Frontend::kGrpc;
  auto events = RecordEvents(r, EventOptions{});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(std::get<int64_t>(*Ext(events[1], "statuscode")), 400);
  EXPECT_EQ(std::get<std::string>(*Ext(events[1], "protocol")), "grpc");
  EXPECT_STREQ(Parse(events[1].data)["error"].GetString(), "input 'x': expected 4 features, got 3");
  EXPECT_EQ(Parse(events[0].data)["inputs"].Size(), 1u) << "the inputs as received";

  r.code = StatusCode::kInternal;
  EXPECT_EQ(std::get<int64_t>(*Ext(RecordEvents(r, EventOptions{})[1], "statuscode")), 500);
  r.code = StatusCode::kOverloaded;
  EXPECT_EQ(std::get<int64_t>(*Ext(RecordEvents(r, EventOptions{})[1], "statuscode")), 503);
}

TEST(PayloadEventsTest, ABodyThatDidNotDecodeLogsARequestEventWithoutData) {
  InferenceRecord r;
  r.model = "iris";
  r.version = "1";
  r.request_id = "gen-1";
  r.code = StatusCode::kInvalidArgument;
  r.error = "the request body must be a JSON object";
  auto events = RecordEvents(r, EventOptions{});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].data.empty());
  EXPECT_STREQ(Parse(events[1].data)["error"].GetString(), "the request body must be a JSON object");
}

TEST(PayloadEventsTest, LargeTensorsAreTruncatedAndSaySo) {
  InferenceRecord r = Success();
  r.inputs = {Fp32("x", std::vector<float>(1000, 1.0f))};
  EventOptions o;
  o.max_tensor_bytes = 40;  // 10 FP32
  auto events = RecordEvents(r, o);
  EXPECT_EQ(std::get<bool>(*Ext(events[0], "truncated")), true);
  EXPECT_EQ(Ext(events[1], "truncated"), nullptr) << "the outputs are small";
  auto d = Parse(events[0].data);
  const auto& x = d["inputs"][0];
  EXPECT_EQ(x["data"].Size(), 10u);
  EXPECT_EQ(x["shape"][1].GetInt(), 1000) << "the real shape";
  EXPECT_TRUE(x["parameters"]["truncated"].GetBool());
  EXPECT_EQ(x["parameters"]["element_count"].GetInt(), 1000);
}

TEST(PayloadEventsTest, ModesSampledRateTraceparentAndEscapedSources) {
  InferenceRecord r = Success();
  r.model = "my model/v";
  r.trace_parent = TraceContext::Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ASSERT_TRUE(r.trace_parent.has_value());
  EventOptions o;
  o.mode = LogMode::kResponse;
  o.sampled_rate = 10;
  auto events = RecordEvents(r, o);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "org.ferry.inference.response");
  EXPECT_EQ(events[0].source, "ferry://localhost/models/my%20model%2Fv/versions/2");
  EXPECT_EQ(std::get<int64_t>(*Ext(events[0], "sampledrate")), 10);
  EXPECT_EQ(std::get<std::string>(*Ext(events[0], "traceparent")),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  o.mode = LogMode::kRequest;
  events = RecordEvents(r, o);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "org.ferry.inference.request");
}

TEST(PayloadEventsTest, EventIdsNeverRepeat) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i)
    for (const auto& e : RecordEvents(Success(), EventOptions{})) ids.insert(e.id);
  EXPECT_EQ(ids.size(), 2000u);
}

}  // namespace
}  // namespace ferry::monitoring::payload_log
