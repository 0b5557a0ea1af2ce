#include "monitoring/payload_log/kafka_sink.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace ferry::monitoring::payload_log {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

CloudEvent Event(const std::string& request_id, bool with_data = true) {
  CloudEvent e;
  e.id = "ev-" + request_id;
  e.source = "ferry://test/models/m/versions/1";
  e.type = "org.ferry.inference.response";
  e.time_ms = 1764608584123;  // 2025-12-01T17:03:04.123Z
  e.extensions = {{"requestid", request_id}, {"statuscode", int64_t{404}}, {"truncated", true}};
  if (with_data) e.data = R"({"error":"no"})";
  e.model = "m";
  e.version = "1";
  return e;
}

TEST(KafkaRecordTest, BinaryModeHeadersValueAndKey) {
  KafkaRecord r = ToKafkaRecord(Event("req-7"));
  std::vector<std::pair<std::string, std::string>> want = {
      {"ce_specversion", "1.0"},
      {"ce_id", "ev-req-7"},
      {"ce_source", "ferry://test/models/m/versions/1"},
      {"ce_type", "org.ferry.inference.response"},
      {"ce_time", "2025-12-01T17:03:04.123Z"},
      {"ce_requestid", "req-7"},
      {"ce_statuscode", "404"},
      {"ce_truncated", "true"},
      {"content-type", "application/json"},
  };
  EXPECT_EQ(r.headers, want);
  EXPECT_EQ(r.key, "req-7");
  EXPECT_EQ(r.value, R"({"error":"no"})");
}

TEST(KafkaRecordTest, NoDataNoContentType) {
  KafkaRecord r = ToKafkaRecord(Event("r", /*with_data=*/false));
  for (const auto& [name, value] : r.headers) EXPECT_NE(name, "content-type");
  EXPECT_TRUE(r.value.empty());
}

TEST(KafkaSpecTest, ParsesAndRefuses) {
  auto t = ParseKafkaSpec("kafka://a:9092,b:9093/payloads.v1");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->brokers, "a:9092,b:9093");
  EXPECT_EQ(t->topic, "payloads.v1");
  EXPECT_EQ(KafkaSpec(*t), "kafka://a:9092,b:9093/payloads.v1");
  EXPECT_EQ(ParseKafkaSpec("kafka://a:9092").status().message(), "'kafka://a:9092' names no topic (kafka://BROKERS/TOPIC)");
  EXPECT_EQ(ParseKafkaSpec("kafka:///t").status().message(), "'kafka:///t' names no broker");
  EXPECT_EQ(ParseKafkaSpec("kafka://a:1/bad topic").status().message(),
            "'kafka://a:1/bad topic': topic 'bad topic' may hold only letters, digits, '.', '_' and '-'");
  EXPECT_FALSE(ParseKafkaSpec("kafka:a/t").ok());
}

TEST(KafkaSinkTest, BadPropertyIsNamed) {
  KafkaSinkOptions o;
  o.properties = {{"no.such.property", "1"}};
  Status s = CheckKafkaProperties(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("kafka property no.such.property=1"), std::string::npos) << s.message();
  auto sink = KafkaSink::Create({"127.0.0.1:1", "t"}, o, nullptr);
  EXPECT_FALSE(sink.ok());
}

// What the sink reported, by result.
struct Counts {
  std::mutex mu;
  std::map<EventResult, int> n;
  EventCounter counter() {
    return [this](const CloudEvent& e, EventResult r) {
      EXPECT_EQ(e.model, "m");
      std::lock_guard lock(mu);
      ++n[r];
    };
  }
  int get(EventResult r) {
    std::lock_guard lock(mu);
    return n[r];
  }
};

// No broker listens on port 1: librdkafka keeps retrying, the events wait in its queue
// and fail at message.timeout.ms; Write never blocks meanwhile.
TEST(KafkaSinkTest, UnreachableBrokerFailsEventsAtTheTimeoutWithoutBlocking) {
  Counts counts;
  KafkaSinkOptions o;
  o.message_timeout = milliseconds(500);
  auto sink = KafkaSink::Create({"127.0.0.1:1", "payloads"}, o, counts.counter());
  ASSERT_TRUE(sink.ok()) << sink.status().message();
  const auto t0 = SteadyClock::now();
  for (int i = 0; i < 50; ++i) (*sink)->Write({Event("r" + std::to_string(i)), Event("s" + std::to_string(i))});
  EXPECT_LT(SteadyClock::now() - t0, milliseconds(200));
  const auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (counts.get(EventResult::kFailed) < 100 && SteadyClock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(counts.get(EventResult::kFailed), 100);
  EXPECT_EQ(counts.get(EventResult::kWritten), 0);
}

TEST(KafkaSinkTest, FullQueueDropsAndFlushIsBounded) {
  Counts counts;
  KafkaSinkOptions o;
  o.max_queued_messages = 10;
  o.flush_timeout = milliseconds(300);
  auto sink = KafkaSink::Create({"127.0.0.1:1", "payloads"}, o, counts.counter());
  ASSERT_TRUE(sink.ok()) << sink.status().message();
  for (int i = 0; i < 15; ++i) (*sink)->Write({Event("r" + std::to_string(i))});
  EXPECT_EQ(counts.get(EventResult::kDropped), 5);
  const auto t0 = SteadyClock::now();
  (*sink)->Flush();
  EXPECT_LT(SteadyClock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(counts.get(EventResult::kFailed), 10) << "what was queued fails at the flush's end";
  (*sink)->Write({Event("late")});  // after the flush: dropped, not lost track of
  EXPECT_EQ(counts.get(EventResult::kDropped), 6);
}

}  // namespace
}  // namespace ferry::monitoring::payload_log
