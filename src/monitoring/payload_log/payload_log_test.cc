#include "monitoring/payload_log/payload_log.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace ferry::monitoring::payload_log {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> Lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

double Counter(prometheus::Registry& registry, const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != "ferry_payload_log_events_total") continue;
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> got;
      for (const auto& l : m.label) got[l.name] = l.value;
      if (got == labels) return m.counter.value;
    }
  }
  return -1;  // no such series
}

InferenceRecord Record(const std::string& model, const std::string& id) {
  InferenceRecord r;
  r.model = model;
  r.version = "1";
  r.request_id = id;
  r.received_wall_ms = 1796144584000ull;
  Tensor t;
  t.name = "x";
  t.datatype = DataType::kInt32;
  t.shape = {2};
  int32_t v[2] = {1, 2};
  t.Own(std::string(reinterpret_cast<const char*>(v), sizeof(v)));
  r.inputs.push_back(t);
  r.outputs.push_back(t);
  return r;
}

class PayloadLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_payload_log_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  MonitoredModel Version(const std::string& model, std::map<std::string, std::string, std::less<>> settings) {
    return MonitoredModel{model, "1", dir_, std::move(settings)};
  }
  std::string FileSpec(const std::string& name) { return "file:" + (dir_ / name).string(); }

  fs::path dir_;
  prometheus::Registry registry_;
};

TEST_F(PayloadLogTest, BadSettingsAreNamed) {
  PayloadLog log({}, &registry_);
  auto attach = [&](std::map<std::string, std::string, std::less<>> s) {
    return log.Attach(Version("m", std::move(s))).message();
  };
  const std::string sink = FileSpec("p.jsonl");
  EXPECT_EQ(attach({{"payload_log.sink", sink}, {"payload_log.sample_rate", "2"}}),
            "monitoring.payload_log.sample_rate: must be a number from 0 to 1, not '2'");
  EXPECT_EQ(attach({{"payload_log.sink", sink}, {"payload_log.sample_rate", "ten%"}}),
            "monitoring.payload_log.sample_rate: must be a number from 0 to 1, not 'ten%'");
  EXPECT_EQ(attach({{"payload_log.sink", sink}, {"payload_log.mode", "both"}}),
            "monitoring.payload_log.mode: must be all, request or response, not 'both'");
  EXPECT_EQ(attach({{"payload_log.sink", sink}, {"payload_log.max_tensor_bytes", "-1"}}),
            "monitoring.payload_log.max_tensor_bytes: must be a whole number of bytes, not '-1'");
  EXPECT_EQ(attach({{"payload_log.sink", sink}, {"payload_log.rate", "0.1"}}),
            "unknown setting 'monitoring.payload_log.rate' (payload_log takes sink, sample_rate, mode, max_tensor_bytes, "
            "kafka.brokers, kafka.topic)");
  EXPECT_EQ(attach({{"payload_log.sink", "ftp://host/x"}}),
            "monitoring.payload_log.sink: 'ftp://host/x' is not file:PATH, http://HOST[:PORT]/PATH, "
            "kafka://BROKERS/TOPIC, kafka or none");
  EXPECT_EQ(attach({{"payload_log.sink", "kafka"}, {"payload_log.kafka.topic", "t"}}),
            "monitoring.payload_log.kafka.brokers: must be set (HOST:PORT[,HOST:PORT...]) with sink kafka");
  EXPECT_EQ(attach({{"payload_log.sink", "kafka"}, {"payload_log.kafka.brokers", "b:9092"}}),
            "monitoring.payload_log.kafka.topic: must be set with sink kafka");
  EXPECT_EQ(attach({{"payload_log.sink", sink}, {"payload_log.kafka.topic", "t"}}),
            "monitoring.payload_log.kafka.topic: only applies with sink kafka, not '" + sink + "'");
  EXPECT_EQ(attach({{"payload_log.sink", "https://host/x"}}),
            "monitoring.payload_log.sink: 'https://host/x': TLS is not supported; use http:// (e.g. to a local collector)");
#ifdef FERRY_PAYLOAD_LOG_KAFKA
  EXPECT_EQ(attach({{"payload_log.sink", "kafka://broker"}}),
            "monitoring.payload_log.sink: 'kafka://broker' names no topic (kafka://BROKERS/TOPIC)");
  // Both spellings name one sink.
  EXPECT_TRUE(log.Attach(Version("k1", {{"payload_log.sink", "kafka://127.0.0.1:1/t"}})).ok());
  EXPECT_TRUE(log.Attach(Version("k2", {{"payload_log.sink", "kafka"}, {"payload_log.kafka.brokers", "127.0.0.1:1"},
                                        {"payload_log.kafka.topic", "t"}}))
                  .ok());
  EXPECT_TRUE(log.Wants("k1", "1") && log.Wants("k2", "1"));
#else
  EXPECT_EQ(attach({{"payload_log.sink", "kafka://broker/topic"}}),
            "monitoring.payload_log.sink: 'kafka://broker/topic': this ferry was built without Kafka "
            "(FERRY_WITH_KAFKA=OFF: no librdkafka)");
#endif
  EXPECT_EQ(attach({{"payload_log.sink", "file:"}}), "monitoring.payload_log.sink: 'file:' names no file");
  EXPECT_EQ(attach({{"payload_log.sample_rate", "0.5"}}),
            "monitoring.payload_log.sink: not set, so the other payload_log settings have no effect (set it, or "
            "--payload-log)");
  EXPECT_FALSE(log.Wants("m", "1"));
  EXPECT_TRUE(log.Attach(Version("m", {})).ok()) << "no settings: not logged, not an error";
  EXPECT_TRUE(log.Attach(Version("m", {{"payload_log.sink", "none"}})).ok());
  EXPECT_FALSE(log.Wants("m", "1"));
}

TEST_F(PayloadLogTest, SamplingIsDeterministicPerIdAndHonoursTheRate) {
  EXPECT_TRUE(Sampled("anything", 1));
  EXPECT_FALSE(Sampled("anything", 0));
  for (double rate : {0.01, 0.1, 0.5, 0.9}) {
    int in = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) in += Sampled("req-" + std::to_string(i), rate);
    // Binomial standard deviation sqrt(n p (1-p)) is at most 71 here; allow 4 of them.
    EXPECT_NEAR(in, rate * n, 4 * std::sqrt(n * rate * (1 - rate)) + 1) << "rate " << rate;
  }
  for (int i = 0; i < 100; ++i) {
    const std::string id = "id-" + std::to_string(i);
    EXPECT_EQ(Sampled(id, 0.3), Sampled(id, 0.3));
    if (Sampled(id, 0.1)) {
      EXPECT_TRUE(Sampled(id, 0.3)) << "a sample at a lower rate is inside the higher rate's";
    }
  }
}

TEST_F(PayloadLogTest, SamplingHashIsPinned) {
  // Replicas and releases must take the same decision for an id (the feedback join, a
  // retried request): the hash's values are fixed (FNV-1a, then splitmix64's finaliser).
  EXPECT_EQ(RequestIdHash(""), 17665956581633026203ull);
  EXPECT_EQ(RequestIdHash("a"), 198367012849983736ull);
  EXPECT_EQ(RequestIdHash("req-1"), 731977614612919186ull);
  EXPECT_EQ(RequestIdHash("0123456789abcdef"), 6914930179896988514ull);
  EXPECT_EQ(RequestIdHash("9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"), 1584015863383966121ull);
}

TEST_F(PayloadLogTest, LogsEachRecordAsTwoCloudEventLinesInTheModelsFile) {
  PayloadLog log({}, &registry_);
  ASSERT_TRUE(log.Attach(Version("m", {{"payload_log.sink", FileSpec("p.jsonl")}})).ok());
  EXPECT_TRUE(log.Wants("m", "1"));
  EXPECT_FALSE(log.Wants("m", "2"));
  for (int i = 0; i < 3; ++i) log.Consume(Record("m", "r" + std::to_string(i)));
  log.Flush();
  auto lines = Lines(dir_ / "p.jsonl");
  ASSERT_EQ(lines.size(), 6u);
  for (size_t i = 0; i < lines.size(); ++i) {
    rapidjson::Document d;
    d.Parse(lines[i].c_str());
    ASSERT_FALSE(d.HasParseError()) << lines[i];
    EXPECT_STREQ(d["specversion"].GetString(), "1.0");
    EXPECT_EQ(std::string(d["requestid"].GetString()), "r" + std::to_string(i / 2));
    EXPECT_STREQ(d["type"].GetString(), i % 2 ? "org.ferry.inference.response" : "org.ferry.inference.request");
  }
  EXPECT_EQ(Counter(registry_, {{"model", "m"}, {"version", "1"}, {"result", "written"}}), 6);
  // The other results exist at 0 from the first event on, for rate() in alert rules.
  EXPECT_EQ(Counter(registry_, {{"model", "m"}, {"version", "1"}, {"result", "dropped"}}), 0);
  EXPECT_EQ(Counter(registry_, {{"model", "m"}, {"version", "1"}, {"result", "failed"}}), 0);
  log.Detach("m", "1");
  EXPECT_FALSE(log.Wants("m", "1"));
}

TEST_F(PayloadLogTest, ABatchReachesTheFileInOneWriteAtItsEnd) {
  std::vector<std::string> counted;
  FileSink sink("file:x", (dir_ / "b.jsonl").string(), {}, [&](const CloudEvent& e, EventResult r) {
    counted.push_back(e.model + "/" + e.version + " " + std::string(EventResultName(r)));
  });
  CloudEvent e;
  e.id = "e1";
  e.source = "ferry://t";
  e.type = "t";
  e.model = "m";
  e.version = "1";
  sink.Write({e, e});
  e.model = "n";
  sink.Write({e});
  EXPECT_TRUE(Lines(dir_ / "b.jsonl").empty()) << "nothing is written before the batch ends";
  EXPECT_TRUE(counted.empty());
  sink.EndBatch();
  EXPECT_EQ(Lines(dir_ / "b.jsonl").size(), 3u);
  EXPECT_EQ(counted, (std::vector<std::string>{"m/1 written", "m/1 written", "n/1 written"}));
  sink.EndBatch();  // nothing buffered: nothing written twice
  EXPECT_EQ(Lines(dir_ / "b.jsonl").size(), 3u);
}

TEST_F(PayloadLogTest, ConsumeBatchLogsTheRunsSampledRecords) {
  PayloadLog log({}, &registry_);
  ASSERT_TRUE(log.Attach(Version("m", {{"payload_log.sink", FileSpec("r.jsonl")}})).ok());
  std::vector<InferenceRecord> records;
  for (int i = 0; i < 4; ++i) records.push_back(Record("m", "r" + std::to_string(i)));
  std::vector<const InferenceRecord*> run;
  for (const auto& r : records) run.push_back(&r);
  log.ConsumeBatch(run);
  auto lines = Lines(dir_ / "r.jsonl");
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_NE(lines[7].find("\"requestid\":\"r3\""), std::string::npos);
  EXPECT_EQ(Counter(registry_, {{"model", "m"}, {"version", "1"}, {"result", "written"}}), 8);
}

TEST_F(PayloadLogTest, VersionsNamingOneFileShareItAndItRotates) {
  PayloadLogOptions o;
  o.file.max_bytes = 2000;
  o.file.keep = 2;
  PayloadLog log(o, &registry_);
  ASSERT_TRUE(log.Attach(Version("a", {{"payload_log.sink", FileSpec("shared.jsonl")}})).ok());
  ASSERT_TRUE(log.Attach(Version("b", {{"payload_log.sink", "file:" + (dir_ / "." / "shared.jsonl").string()}})).ok());
  for (int i = 0; i < 20; ++i) log.Consume(Record(i % 2 ? "a" : "b", "r" + std::to_string(i)));
  log.Flush();
  ASSERT_TRUE(fs::exists(dir_ / "shared.jsonl.1"));
  ASSERT_TRUE(fs::exists(dir_ / "shared.jsonl.2"));
  EXPECT_FALSE(fs::exists(dir_ / "shared.jsonl.3"));
  for (const char* f : {"shared.jsonl", "shared.jsonl.1", "shared.jsonl.2"}) {
    EXPECT_LE(fs::file_size(dir_ / f), 2000u);
    auto lines = Lines(dir_ / f);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.size() % 2, 0u) << "a request's two events stay in one file";
    for (const auto& l : lines) {
      rapidjson::Document d;
      d.Parse(l.c_str());
      EXPECT_FALSE(d.HasParseError()) << l;
    }
  }
  // The newest events are in the current file.
  EXPECT_NE(Lines(dir_ / "shared.jsonl").back().find("\"requestid\":\"r19\""), std::string::npos);
}

TEST_F(PayloadLogTest, SamplesByRequestIdAndMarksTheRate) {
  PayloadLog log({}, nullptr);
  ASSERT_TRUE(log.Attach(Version("m", {{"payload_log.sink", FileSpec("s.jsonl")},
                                       {"payload_log.sample_rate", "0.25"},
                                       {"payload_log.mode", "response"}}))
                  .ok());
  int expected = 0;
  for (int i = 0; i < 400; ++i) {
    const std::string id = "q" + std::to_string(i);
    expected += Sampled(id, 0.25);
    log.Consume(Record("m", id));
  }
  log.Flush();
  auto lines = Lines(dir_ / "s.jsonl");
  EXPECT_EQ(static_cast<int>(lines.size()), expected);
  for (const auto& l : lines) {
    rapidjson::Document d;
    d.Parse(l.c_str());
    EXPECT_EQ(d["sampledrate"].GetInt(), 4);
    EXPECT_TRUE(Sampled(d["requestid"].GetString(), 0.25));
  }
}

}  // namespace
}  // namespace ferry::monitoring::payload_log
