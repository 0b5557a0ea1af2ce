#include "monitoring/monitoring_hub.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace ferry::monitoring {
namespace {

// The value of a counter or gauge in `registry` with exactly these labels; -1 if absent.
double Value(prometheus::Registry& registry, const std::string& name, const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> got;
      for (const auto& l : m.label) got[l.name] = l.value;
      if (got != labels) continue;
      return family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return -1;
}

// Records what it is given; Consume can be held up until Release, to fill the queue.
class TestConsumer : public RecordConsumer {
 public:
  Status Attach(const MonitoredModel& m) override {
    std::lock_guard lock(mu_);
    log_.push_back("attach " + m.model + "/" + m.version);
    if (auto it = m.settings.find("test.fail"); it != m.settings.end()) return InvalidArgument("test.fail: refused");
    if (m.settings.count("test.on")) wanted_.insert(m.model + "/" + m.version);
    return Status::Ok();
  }
  void Detach(std::string_view model, std::string_view version) override {
    std::lock_guard lock(mu_);
    const std::string key = std::string(model) + "/" + std::string(version);
    log_.push_back("detach " + key);
    wanted_.erase(key);
  }
  bool Wants(std::string_view model, std::string_view version) const override {
    std::lock_guard lock(mu_);
    return wanted_.count(std::string(model) + "/" + std::string(version)) > 0;
  }
  void Consume(const InferenceRecord& r) override {
    std::unique_lock lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return released_; });
    log_.push_back("consume " + r.request_id);
  }
  void Flush() override {
    std::lock_guard lock(mu_);
    log_.push_back("flush");
  }

  void Hold() {
    std::lock_guard lock(mu_);
    released_ = false;
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Waits until Consume has been entered n times in all.
  bool WaitEntered(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return entered_ >= n; });
  }
  std::vector<std::string> log() const {
    std::lock_guard lock(mu_);
    return log_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> wanted_;
  std::vector<std::string> log_;
  bool released_ = true;
  int entered_ = 0;
};

InferenceRecord Record(const std::string& model, const std::string& id, size_t tensor_bytes = 0) {
  InferenceRecord r;
  r.model = model;
  r.version = "1";
  r.request_id = id;
  if (tensor_bytes) {
    Tensor t;
    t.name = "x";
    t.datatype = DataType::kUint8;
    t.shape = {static_cast<int64_t>(tensor_bytes)};
    t.Own(std::string(tensor_bytes, 'x'));
    r.inputs.push_back(t);
  }
  return r;
}

MonitoredModel Version(const std::string& model, std::map<std::string, std::string, std::less<>> settings) {
  return MonitoredModel{model, "1", "/tmp", std::move(settings)};
}

struct HubFixture {
  explicit HubFixture(MonitoringHubOptions o) : hub(o, &registry) {
    auto c = std::make_unique<TestConsumer>();
    consumer = c.get();
    hub.AddConsumer(std::move(c), "test");
    hub.Start();
  }
  prometheus::Registry registry;
  TestConsumer* consumer;
  MonitoringHub hub;
};

TEST(MonitoringHubTest, WantsFollowsWhatConsumersWantAsVersionsComeAndGo) {
  HubFixture f({});
  EXPECT_FALSE(f.hub.Wants("a", "1"));
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"test.on", "1"}})).ok());
  ASSERT_TRUE(f.hub.VersionReady(Version("b", {})).ok());  // attached, but its consumer does not want it
  EXPECT_TRUE(f.hub.Wants("a", "1"));
  EXPECT_FALSE(f.hub.Wants("a", "2"));
  EXPECT_FALSE(f.hub.Wants("b", "1"));
  f.hub.VersionGone("a", "1");
  EXPECT_FALSE(f.hub.Wants("a", "1"));
  f.hub.Offer(Record("a", "ignored"));  // no longer monitored: neither queued nor counted
  EXPECT_EQ(f.hub.pending(), 0u);
}

// Wants every attached version; notes each run ConsumeBatch is handed ("a:r0 a:r1").
class RunConsumer : public RecordConsumer {
 public:
  Status Attach(const MonitoredModel&) override { return Status::Ok(); }
  void Detach(std::string_view, std::string_view) override {}
  bool Wants(std::string_view, std::string_view) const override { return true; }
  void Consume(const InferenceRecord&) override { ADD_FAILURE() << "the hub hands over runs"; }
  void ConsumeBatch(std::span<const InferenceRecord* const> records) override {
    std::string run;
    for (const InferenceRecord* r : records) run += (run.empty() ? "" : " ") + r->model + ":" + r->request_id;
    std::lock_guard lock(mu);
    runs.push_back(run);
  }
  std::mutex mu;
  std::vector<std::string> runs;
};

TEST(MonitoringHubTest, HandsEachBatchOverAsRunsOfOneVersionInOrder) {
  MonitoringHub hub({}, nullptr);
  auto c = std::make_unique<RunConsumer>();
  RunConsumer* consumer = c.get();
  hub.AddConsumer(std::move(c), "test");
  ASSERT_TRUE(hub.VersionReady(Version("a", {})).ok());
  ASSERT_TRUE(hub.VersionReady(Version("b", {})).ok());
  for (const char* m : {"a", "a", "b", "a", "b", "b"}) hub.Offer(Record(m, "r" + std::to_string(hub.pending())));
  hub.Stop();  // never started: Stop delivers the queue as one batch
  std::lock_guard lock(consumer->mu);
  EXPECT_EQ(consumer->runs, (std::vector<std::string>{"a:r0 a:r1", "b:r2", "a:r3", "b:r4 b:r5"}));
}

// Wants the attached versions of models whose names start with `models`, with a fixed demand.
class DemandConsumer : public RecordConsumer {
 public:
  DemandConsumer(std::string models, TapDemand demand) : models_(std::move(models)), demand_(demand) {}
  Status Attach(const MonitoredModel& m) override {
    std::lock_guard lock(mu_);
    if (m.model.rfind(models_, 0) == 0) attached_.insert(m.model);
    return Status::Ok();
  }
  void Detach(std::string_view model, std::string_view) override {
    std::lock_guard lock(mu_);
    attached_.erase(std::string(model));
  }
  bool Wants(std::string_view model, std::string_view) const override {
    std::lock_guard lock(mu_);
    return attached_.count(std::string(model)) > 0;
  }
  TapDemand Demand(std::string_view model, std::string_view version) const override {
    return Wants(model, version) ? demand_ : TapDemand{};
  }
  void Consume(const InferenceRecord&) override {}

 private:
  const std::string models_;
  const TapDemand demand_;
  mutable std::mutex mu_;
  std::set<std::string> attached_;
};

TEST(MonitoringHubTest, DemandIsTheConsumersUnionAndSamplesOnlyWhenEveryConsumerDoes) {
  MonitoringHub hub({}, nullptr);
  // Like a payload log of requests at 10 % and one of answers at 25 %, for every model;
  // like input drift (every request) for models named drift*.
  hub.AddConsumer(std::make_unique<DemandConsumer>("", TapDemand{true, true, false, 0.1}), "requests");
  hub.AddConsumer(std::make_unique<DemandConsumer>("", TapDemand{true, false, true, 0.25}), "answers");
  hub.AddConsumer(std::make_unique<DemandConsumer>("drift", TapDemand{true, true, false, 1.0}), "drift");
  hub.Start();
  EXPECT_FALSE(hub.Demand("plain", "1").wanted);
  ASSERT_TRUE(hub.VersionReady(Version("plain", {})).ok());
  ASSERT_TRUE(hub.VersionReady(Version("drift_model", {})).ok());
  const TapDemand plain = hub.Demand("plain", "1");
  EXPECT_TRUE(plain.wanted && plain.inputs && plain.outputs);
  EXPECT_EQ(plain.sample_rate, 0.25) << "the larger sample holds the smaller one";
  const TapDemand drift = hub.Demand("drift_model", "1");
  EXPECT_TRUE(drift.wanted && drift.inputs && drift.outputs);
  EXPECT_EQ(drift.sample_rate, 1.0) << "drift reads every request";
  EXPECT_FALSE(hub.Demand("plain", "2").wanted);
  hub.VersionGone("plain", "1");
  EXPECT_FALSE(hub.Demand("plain", "1").wanted);
  EXPECT_FALSE(hub.Wants("plain", "1"));
  hub.Stop();
}

TEST(MonitoringHubTest, AnUnloadedVersionsQueuedRecordsAreDeliveredBeforeItIsDetached) {
  HubFixture f({});
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"test.on", "1"}})).ok());
  f.consumer->Hold();
  for (int i = 0; i < 3; ++i) f.hub.Offer(Record("a", "r" + std::to_string(i)));
  ASSERT_TRUE(f.consumer->WaitEntered(1));
  std::thread unload([&f] { f.hub.VersionGone("a", "1"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(f.hub.Wants("a", "1")) << "no new records once it is gone";
  f.consumer->Release();
  unload.join();
  EXPECT_EQ(f.consumer->log(),
            (std::vector<std::string>{"attach a/1", "consume r0", "consume r1", "consume r2", "detach a/1"}));
}

TEST(MonitoringHubTest, AReloadDetachesTheOldSettingsFirst) {
  HubFixture f({});
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"test.on", "1"}})).ok());
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {})).ok());
  EXPECT_FALSE(f.hub.Wants("a", "1"));
  EXPECT_EQ(f.consumer->log(), (std::vector<std::string>{"attach a/1", "detach a/1", "attach a/1"}));
}

TEST(MonitoringHubTest, UnknownSettingsAndRefusalsAreNamedAndTheRestStillAttaches) {
  HubFixture f({});
  Status s = f.hub.VersionReady(Version("a", {{"test.on", "1"}, {"drfit.window", "100"}}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "model 'a' version 1: monitoring: unknown setting 'monitoring.drfit.window' (known: test.*)");
  EXPECT_TRUE(f.hub.Wants("a", "1")) << "the consumer accepted its own settings";
  Status refused = f.hub.VersionReady(Version("b", {{"test.fail", "1"}}));
  EXPECT_EQ(refused.message(), "model 'b' version 1: monitoring: test.fail: refused");
}

TEST(MonitoringHubTest, AFullQueueDropsAndCountsWithoutBlocking) {
  MonitoringHubOptions o;
  o.max_records = 3;
  o.max_batch = 1;
  HubFixture f(o);
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"test.on", "1"}})).ok());
  f.consumer->Hold();
  f.hub.Offer(Record("a", "r0"));
  ASSERT_TRUE(f.consumer->WaitEntered(1));  // r0 is being consumed (and still counts)
  const auto start = std::chrono::steady_clock::now();
  for (int i = 1; i < 10; ++i) f.hub.Offer(Record("a", "r" + std::to_string(i)));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(1)) << "Offer must not wait for the consumer";
  EXPECT_EQ(f.hub.pending(), 3u);
  EXPECT_EQ(Value(f.registry, "ferry_monitoring_records_dropped_total",
                  {{"model", "a"}, {"version", "1"}, {"reason", "queue_full"}}),
            7);
  EXPECT_EQ(Value(f.registry, "ferry_monitoring_queue_records", {}), 3);
  f.consumer->Release();
  f.hub.Stop();
  EXPECT_EQ(Value(f.registry, "ferry_monitoring_records_total", {{"model", "a"}, {"version", "1"}}), 3);
  EXPECT_EQ(f.consumer->log(), (std::vector<std::string>{"attach a/1", "consume r0", "consume r1", "consume r2", "flush"}));
  EXPECT_EQ(Value(f.registry, "ferry_monitoring_queue_records", {}), 0);
}

TEST(MonitoringHubTest, TheByteBoundDropsTooButOneBigRecordStillPasses) {
  MonitoringHubOptions o;
  o.max_bytes = 100;
  o.max_batch = 1;
  HubFixture f(o);
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"test.on", "1"}})).ok());
  f.consumer->Hold();
  f.hub.Offer(Record("a", "big", 500));  // larger than the bound, but the queue is empty
  ASSERT_TRUE(f.consumer->WaitEntered(1));
  f.hub.Offer(Record("a", "small", 10));  // 500 + 10 > 100 while "big" is held
  EXPECT_EQ(Value(f.registry, "ferry_monitoring_queue_bytes", {}), 500);
  EXPECT_EQ(Value(f.registry, "ferry_monitoring_records_dropped_total",
                  {{"model", "a"}, {"version", "1"}, {"reason", "queue_full"}}),
            1);
  f.consumer->Release();
  f.hub.Stop();
  EXPECT_EQ(f.consumer->log(), (std::vector<std::string>{"attach a/1", "consume big", "flush"}));
}

TEST(MonitoringHubTest, StopDrainsEverythingThenFlushesAndLaterRecordsAreCounted) {
  MonitoringHubOptions o;
  o.max_batch = 2;
  HubFixture f(o);
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"test.on", "1"}})).ok());
  f.consumer->Hold();
  for (int i = 0; i < 5; ++i) f.hub.Offer(Record("a", "r" + std::to_string(i)));
  ASSERT_TRUE(f.consumer->WaitEntered(1));
  f.consumer->Release();
  f.hub.Stop();
  EXPECT_EQ(f.consumer->log(), (std::vector<std::string>{"attach a/1", "consume r0", "consume r1", "consume r2",
                                                         "consume r3", "consume r4", "flush"}));
  f.hub.Offer(Record("a", "late"));
  EXPECT_EQ(Value(f.registry, "ferry_monitoring_records_dropped_total",
                  {{"model", "a"}, {"version", "1"}, {"reason", "stopped"}}),
            1);
}

TEST(MonitoringHubTest, StopWithoutStartStillDeliversAndFlushes) {
  prometheus::Registry registry;
  MonitoringHub hub({}, &registry);
  auto c = std::make_unique<TestConsumer>();
  TestConsumer* consumer = c.get();
  hub.AddConsumer(std::move(c), "test");
  ASSERT_TRUE(hub.VersionReady(Version("a", {{"test.on", "1"}})).ok());
  hub.Offer(Record("a", "r0"));
  hub.Stop();
  EXPECT_EQ(consumer->log(), (std::vector<std::string>{"attach a/1", "consume r0", "flush"}));
}

bool WaitDrained(const MonitoringHub& hub) {
  for (int i = 0; i < 1000 && hub.pending() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return hub.pending() == 0;
}

TEST(MonitoringHubTest, AConsumedRecordsStorageIsReusedButItsTensorBytesAreLetGo) {
  HubFixture f({});
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"test.on", "1"}})).ok());
  EXPECT_TRUE(f.hub.NewRecord()->inputs.empty()) << "nothing consumed yet: a new record";
  auto body = std::make_shared<const std::string>(64, 'x');
  {
    InferenceRecord r = Record("a", "0f8fad5b-d9cb-469f-a165-70867728950e");
    Tensor t;
    t.name = "x";
    t.datatype = DataType::kUint8;
    t.shape = {64};
    t.Borrow(body->data(), body->size(), body);
    r.inputs.push_back(t);
    r.outputs.push_back(t);
    r.error = "some error";
    f.hub.Offer(std::move(r));
  }
  ASSERT_TRUE(WaitDrained(f.hub));
  EXPECT_EQ(body.use_count(), 1) << "the request's bytes are not kept alive by a pooled record";
  std::unique_ptr<InferenceRecord> again = f.hub.NewRecord();
  EXPECT_GE(again->request_id.capacity(), 36u) << "the id's storage is reused";
  ASSERT_EQ(again->inputs.size(), 1u);
  EXPECT_EQ(again->inputs[0].byte_size(), 0u);
  EXPECT_EQ(again->inputs[0].data(), nullptr);
  EXPECT_GE(again->inputs[0].shape.capacity(), 1u) << "the shape's storage is reused";
  EXPECT_TRUE(again->error.empty());
  EXPECT_TRUE(f.hub.NewRecord()->inputs.empty()) << "one pooled record, handed out once";
  // Filled again and offered, it is consumed like any other.
  again->request_id = "second";
  f.hub.OfferRecord(std::move(again));
  ASSERT_TRUE(WaitDrained(f.hub));
  const auto log = f.consumer->log();
  EXPECT_EQ(log.back(), "consume second");
}

TEST(MonitoringHubTest, NoPoolMeansEveryRecordIsNew) {
  MonitoringHubOptions o;
  o.pooled_records = 0;
  HubFixture f(o);
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"test.on", "1"}})).ok());
  f.hub.Offer(Record("a", "r1", 8));
  ASSERT_TRUE(WaitDrained(f.hub));
  EXPECT_TRUE(f.hub.NewRecord()->inputs.empty());
}

// Takes the versions whose settings have "rows.on" as feature rows: one value per
// request, the first byte of its first input; notes what ConsumeRows is handed.
class RowsConsumer : public RecordConsumer {
 public:
  class Extractor : public FeatureRowExtractor {
   public:
    size_t width() const override { return 1; }
    std::unique_ptr<Cache> NewCache() const override { return std::make_unique<Cache>(); }
    void Append(const std::vector<Tensor>& inputs, const std::vector<Tensor>&, Cache*,
                FeatureRowBlock* block) const override {
      block->values.push_back(1);
      block->values.push_back(static_cast<double>(static_cast<uint8_t>(inputs.at(0).bytes()[0])));
      ++block->requests;
      ++block->rows;
    }
  };

  Status Attach(const MonitoredModel& m) override {
    std::lock_guard lock(mu_);
    if (m.settings.count("rows.on")) extractors_[m.model] = std::make_shared<Extractor>();
    return Status::Ok();
  }
  void Detach(std::string_view model, std::string_view) override {
    std::lock_guard lock(mu_);
    log_.push_back("detach " + std::string(model) + " after " + std::to_string(requests_) + " requests");
    extractors_.erase(std::string(model));
  }
  bool Wants(std::string_view model, std::string_view) const override {
    std::lock_guard lock(mu_);
    return extractors_.count(std::string(model)) > 0;
  }
  void Consume(const InferenceRecord& r) override {
    std::lock_guard lock(mu_);
    log_.push_back("record " + r.request_id);
  }
  std::shared_ptr<const FeatureRowExtractor> RowsFor(std::string_view model, std::string_view) const override {
    std::lock_guard lock(mu_);
    auto it = extractors_.find(std::string(model));
    return it == extractors_.end() ? nullptr : it->second;
  }
  void ConsumeRows(std::string_view, std::string_view, const FeatureRowExtractor&,
                   const FeatureRowBlock& block) override {
    std::lock_guard lock(mu_);
    ++blocks_;
    requests_ += block.requests;
    for (size_t i = 0; i < block.values.size(); i += 2) {
      EXPECT_EQ(block.values[i], 1.0);
      sum_ += block.values[i + 1];
    }
  }
  uint64_t requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  uint64_t blocks() const {
    std::lock_guard lock(mu_);
    return blocks_;
  }
  double sum() const {
    std::lock_guard lock(mu_);
    return sum_;
  }
  std::vector<std::string> log() const {
    std::lock_guard lock(mu_);
    return log_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Extractor>> extractors_;
  std::vector<std::string> log_;
  uint64_t requests_ = 0, blocks_ = 0;
  double sum_ = 0;
};

std::vector<Tensor> OneByte(uint8_t b) {
  Tensor t;
  t.name = "x";
  t.datatype = DataType::kUint8;
  t.shape = {1};
  t.Own(std::string(1, static_cast<char>(b)));
  return {t};
}

struct RowsFixture {
  explicit RowsFixture(MonitoringHubOptions o, bool start = true) : hub(o, &registry) {
    auto c = std::make_unique<RowsConsumer>();
    consumer = c.get();
    hub.AddConsumer(std::move(c), "rows");
    auto t = std::make_unique<TestConsumer>();
    records = t.get();
    hub.AddConsumer(std::move(t), "test");
    if (start) hub.Start();
  }
  prometheus::Registry registry;
  RowsConsumer* consumer;
  TestConsumer* records;
  MonitoringHub hub;
};

TEST(MonitoringHubRowsTest, StagedRowsOfManyThreadsReachTheConsumerInBlocksWithoutRecords) {
  RowsFixture f({});
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"rows.on", "1"}})).ok());
  const TapDemand d = f.hub.Demand("a", "1");
  EXPECT_TRUE(d.wanted) << "the requests get ids";
  EXPECT_TRUE(d.rows);
  EXPECT_EQ(d.sample_rate, 0.0) << "no consumer wants records";
  constexpr int kThreads = 4, kEach = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&f, t] {
      const std::vector<Tensor> in = OneByte(static_cast<uint8_t>(t + 1));
      for (int i = 0; i < kEach; ++i) f.hub.OfferRows(f.hub.Demand("a", "1"), in, {});
    });
  for (auto& t : threads) t.join();
  f.hub.Stop();  // takes what is still staged
  EXPECT_EQ(f.consumer->requests(), uint64_t{kThreads * kEach});
  EXPECT_EQ(f.consumer->sum(), double{kEach * (1 + 2 + 3 + 4)});
  EXPECT_LT(f.consumer->blocks(), uint64_t{kThreads * kEach} / 10) << "blocks, not a hand-over per request";
  EXPECT_EQ(f.hub.pending(), 0u) << "no record was queued";
  EXPECT_EQ(Value(f.registry, "ferry_monitoring_records_total", {{"model", "a"}, {"version", "1"}}),
            double{kThreads * kEach});
}

TEST(MonitoringHubRowsTest, RowsAndSampledRecordsGoToTheirOwnConsumers) {
  RowsFixture f({});
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"rows.on", "1"}, {"test.on", "1"}})).ok());
  const TapDemand d = f.hub.Demand("a", "1");
  EXPECT_TRUE(d.rows);
  EXPECT_EQ(d.sample_rate, 1.0) << "the record consumer's rate";
  f.hub.OfferRows(f.hub.Demand("a", "1"), OneByte(7), {});
  f.hub.Offer(Record("a", "r1"));
  f.hub.OfferRows(f.hub.Demand("b", "1"), OneByte(7), {});  // not monitored: ignored
  f.hub.Stop();
  EXPECT_EQ(f.consumer->requests(), 1u);
  EXPECT_EQ(f.consumer->sum(), 7.0);
  const auto log = f.consumer->log();
  EXPECT_EQ(std::count(log.begin(), log.end(), "record r1"), 0) << "a row consumer is handed no records";
  const auto rlog = f.records->log();
  EXPECT_EQ(std::count(rlog.begin(), rlog.end(), "consume r1"), 1);
}

TEST(MonitoringHubRowsTest, AFullStageDropsAndCountsAndStopDrainsWhatIsStaged) {
  MonitoringHubOptions o;
  o.max_records = 5;
  RowsFixture f(o, /*start=*/false);  // no thread: nothing is taken until Stop
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"rows.on", "1"}})).ok());
  for (int i = 0; i < 8; ++i) f.hub.OfferRows(f.hub.Demand("a", "1"), OneByte(1), {});
  EXPECT_EQ(Value(f.registry, "ferry_monitoring_records_dropped_total",
                  {{"model", "a"}, {"version", "1"}, {"reason", "queue_full"}}),
            3.0);
  f.hub.Stop();
  EXPECT_EQ(f.consumer->requests(), 5u);
  f.hub.OfferRows(f.hub.Demand("a", "1"), OneByte(1), {});
  EXPECT_EQ(Value(f.registry, "ferry_monitoring_records_dropped_total",
                  {{"model", "a"}, {"version", "1"}, {"reason", "stopped"}}),
            1.0);
  EXPECT_EQ(f.consumer->requests(), 5u);
}

TEST(MonitoringHubRowsTest, AnUnloadedVersionsStagedRowsAreDeliveredBeforeItIsDetached) {
  MonitoringHubOptions o;
  o.max_delay = std::chrono::milliseconds(5);
  RowsFixture f(o);
  ASSERT_TRUE(f.hub.VersionReady(Version("a", {{"rows.on", "1"}})).ok());
  for (int i = 0; i < 10; ++i) f.hub.OfferRows(f.hub.Demand("a", "1"), OneByte(1), {});
  f.hub.VersionGone("a", "1");
  const auto log = f.consumer->log();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back(), "detach a after 10 requests");
  EXPECT_FALSE(f.hub.Demand("a", "1").wanted);
}

}  // namespace
}  // namespace ferry::monitoring
