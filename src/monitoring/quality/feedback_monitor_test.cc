#include "monitoring/quality/feedback_monitor.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <rapidjson/document.h>

#include <chrono>
#include <cstring>

#include "core/manual_clock.h"

namespace ferry::monitoring::quality {
namespace {

using std::chrono::seconds;

// A record of model "m" version "1" whose first output is FP32 [rows, width].
InferenceRecord Record(const std::string& id, const std::vector<float>& values, int64_t rows, int64_t width,
                       const std::string& output = "probabilities") {
  InferenceRecord r;
  r.model = "m";
  r.version = "1";
  r.request_id = id;
  Tensor t;
  t.name = output;
  t.datatype = DataType::kFp32;
  t.shape = {rows, width};
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  t.Own(std::move(bytes));
  r.outputs.push_back(std::move(t));
  return r;
}

MonitoredModel Model(std::map<std::string, std::string, std::less<>> settings) {
  settings.emplace("feedback.enabled", "true");
  return MonitoredModel{"m", "1", "/nonexistent", std::move(settings)};
}

rapidjson::Document Parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

class FeedbackMonitorTest : public ::testing::Test {
 protected:
  ManualClock clock;
  prometheus::Registry registry;
  FeedbackMonitor monitor{FeedbackMonitor::Options{&clock, &registry, 100}};

  std::string Metrics() {
    return prometheus::TextSerializer().Serialize(registry.Collect());
  }
};

TEST_F(FeedbackMonitorTest, JoinsTrueValuesAndComputesBinaryQualityAndTheEstimate) {
  ASSERT_TRUE(monitor.Attach(Model({})).ok());
  // Two-column probabilities: auto-detected as a binary classifier.
  const float p1[] = {0.9f, 0.4f, 0.6f, 0.2f, 0.8f};
  for (int i = 0; i < 5; ++i) monitor.Consume(Record("r" + std::to_string(i), {1 - p1[i], p1[i]}, 1, 2));
  auto reply = monitor.Feedback("m", "", R"({"feedback":[{"id":"r0","target":1},{"id":"r1","target":1},
      {"id":"r2","target":0},{"id":"r3","target":0},{"id":"r4","target":[1]}]})");
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_TRUE(reply->all_joined) << reply->json;
  EXPECT_EQ(Parse(reply->json)["joined"].GetInt(), 5);

  auto snap = monitor.SnapshotJson("m", "1");
  ASSERT_TRUE(snap.ok());
  rapidjson::Document d = Parse(*snap);
  const auto& q = d["versions"][0]["quality"];
  EXPECT_EQ(q["rows"].GetInt(), 5);
  EXPECT_STREQ(q["realised"]["average"].GetString(), "binary");
  EXPECT_NEAR(q["realised"]["accuracy"].GetDouble(), 0.6, 1e-9);
  EXPECT_NEAR(q["realised"]["roc_auc"].GetDouble(), 5.0 / 6, 1e-7);
  EXPECT_STREQ(q["estimated"]["method"].GetString(), "cbpe");
  EXPECT_EQ(q["estimated"]["rows"].GetInt(), 5);

  monitor.Tick();
  const std::string m = Metrics();
  EXPECT_NE(m.find(R"(ferry_feedback_total{model="m",result="joined",version="1"} 5)"), std::string::npos) << m;
  // The other results and the drop reasons exist at 0 from the attach on.
  EXPECT_NE(m.find(R"(ferry_feedback_total{model="m",result="unknown",version="1"} 0)"), std::string::npos) << m;
  EXPECT_NE(m.find(R"(ferry_feedback_predictions_dropped_total{model="m",reason="expired",version="1"} 0)"),
            std::string::npos);
  EXPECT_NE(m.find(R"(ferry_model_quality{metric="accuracy",model="m",version="1"} 0.6)"), std::string::npos) << m;
  EXPECT_NE(m.find(R"(ferry_model_quality_estimated{metric="accuracy",model="m",version="1"})"), std::string::npos);
  EXPECT_NE(m.find(R"(ferry_feedback_pending{model="m",version="1"} 0)"), std::string::npos) << m;
}

TEST_F(FeedbackMonitorTest, UnknownExpiredAndDuplicateIdsAreCountedAndNamed) {
  ASSERT_TRUE(monitor.Attach(Model({{"feedback.ttl_s", "60"}})).ok());
  monitor.Consume(Record("early", {0.3f, 0.7f}, 1, 2));
  clock.Advance(seconds(50));
  monitor.Consume(Record("late", {0.3f, 0.7f}, 1, 2));
  clock.Advance(seconds(20));  // early is 70 s old: past its TTL; late is 20 s old
  auto reply = monitor.Feedback("m", "1", R"({"feedback":[{"id":"early","target":1},{"id":"late","target":1},
      {"id":"late","target":1},{"id":"nope","target":0}]})");
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->all_joined);
  rapidjson::Document d = Parse(reply->json);
  EXPECT_EQ(d["joined"].GetInt(), 1);
  EXPECT_EQ(d["expired"].GetInt(), 1);
  EXPECT_EQ(d["duplicate"].GetInt(), 1);
  EXPECT_EQ(d["unknown"].GetInt(), 1);
  EXPECT_NE(std::string(d["error"].GetString()).find("feedback[0].id: 'early' expired"), std::string::npos)
      << d["error"].GetString();
  monitor.Tick();
  EXPECT_NE(Metrics().find(R"(ferry_feedback_predictions_dropped_total{model="m",reason="expired",version="1"} 1)"),
            std::string::npos);
}

TEST_F(FeedbackMonitorTest, EvictsTheOldestBeyondMaxPending) {
  ASSERT_TRUE(monitor.Attach(Model({{"feedback.max_pending", "2"}})).ok());
  for (int i = 0; i < 3; ++i) monitor.Consume(Record("r" + std::to_string(i), {0.5f, 0.5f}, 1, 2));
  auto reply = monitor.Feedback("m", "", R"({"feedback":[{"id":"r0","target":0},{"id":"r2","target":0}]})");
  ASSERT_TRUE(reply.ok());
  rapidjson::Document d = Parse(reply->json);
  EXPECT_EQ(d["evicted"].GetInt(), 1);
  EXPECT_EQ(d["joined"].GetInt(), 1);
}

TEST_F(FeedbackMonitorTest, BadBodiesAndTargetsNameTheFieldAndJoinNothing) {
  ASSERT_TRUE(monitor.Attach(Model({})).ok());
  monitor.Consume(Record("a", {0.2f, 0.8f, 0.6f, 0.4f}, 2, 2));  // two rows
  monitor.Consume(Record("b", {0.2f, 0.8f}, 1, 2));
  struct Case {
    const char* body;
    const char* error;
  } cases[] = {
      {"not json", "body: not JSON"},
      {"[]", "body: expected an object"},
      {"{}", "feedback: missing"},
      {R"({"feedback":{}})", "feedback: expected an array"},
      {R"({"feedback":[{"target":1}]})", "feedback[0].id: missing"},
      {R"({"feedback":[{"id":"b"}]})", "feedback[0].target: missing"},
      {R"({"feedback":[{"id":7,"target":1}]})", "feedback[0].id: expected a string"},
      {R"({"feedback":[{"id":"b","target":{"x":1}}]})", "feedback[0].target: expected a number"},
      {R"({"feedback":[{"id":"b","target":1,"extra":2}]})", "feedback[0].extra: unknown field"},
      {R"({"feedback":[{"id":"b","target":1},{"id":"a","target":1}]})", "feedback[1].target: expected 2 values"},
      {R"({"feedback":[{"id":"b","target":5}]})", "feedback[0].target: '5' is not a class"},
      {R"({"feedback":[{"id":"b","target":"cat"}]})", "feedback[0].target: 'cat' is not a class"},
  };
  for (const auto& c : cases) {
    auto reply = monitor.Feedback("m", "", c.body);
    ASSERT_FALSE(reply.ok()) << c.body;
    EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(reply.status().message().find(c.error), std::string::npos) << c.body << " -> " << reply.status().message();
  }
  // Nothing was joined by the refused bodies: b still joins.
  auto ok = monitor.Feedback("m", "", R"({"feedback":[{"id":"b","target":1},{"id":"a","target":[1,0]}]})");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_TRUE(ok->all_joined) << ok->json;
  auto none = monitor.Feedback("other", "", R"({"feedback":[]})");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("has no feedback monitoring"), std::string::npos);
}

TEST_F(FeedbackMonitorTest, RegressionWithTwoOutputsAndACountWindow) {
  ASSERT_TRUE(monitor.Attach(Model({{"feedback.task", "regression"}, {"feedback.window", "2"}})).ok());
  monitor.Consume(Record("a", {1, 10}, 1, 2, "y"));
  monitor.Consume(Record("b", {2, 20, 3, 30}, 2, 2, "y"));
  auto reply = monitor.Feedback("m", "", R"({"feedback":[{"id":"a","target":[100,100]},{"id":"b","target":[[2,18],[5,30]]}]})");
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  ASSERT_TRUE(reply->all_joined) << reply->json;
  rapidjson::Document d = Parse(*monitor.SnapshotJson("m", ""));
  const auto& q = d["versions"][0]["quality"];
  EXPECT_EQ(q["rows"].GetInt(), 2);  // the window keeps the last two rows (b's)
  EXPECT_STREQ(q["realised"]["task"].GetString(), "regression");
  EXPECT_NEAR(q["realised"]["mae"].GetDouble(), (1 + 1) / 2.0, 1e-9);  // output 0: |0|,|2| ; output 1: |2|,|0|
  EXPECT_TRUE(q["estimated"].IsNull());
}

TEST_F(FeedbackMonitorTest, BadSettingsAreNamed) {
  auto bad = monitor.Attach(Model({{"feedback.ttl_s", "soon"}}));
  EXPECT_NE(bad.message().find("monitoring.feedback.ttl_s: 'soon' is not a number"), std::string::npos) << bad.message();
  bad = monitor.Attach(Model({{"feedback.colour", "red"}}));
  EXPECT_NE(bad.message().find("monitoring.feedback.colour: unknown feedback setting"), std::string::npos);
  EXPECT_FALSE(monitor.Wants("m", "1"));
}

}  // namespace
}  // namespace ferry::monitoring::quality
