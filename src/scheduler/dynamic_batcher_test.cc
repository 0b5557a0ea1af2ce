#include "scheduler/dynamic_batcher.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>

#include "repository/model_config.h"

namespace ferry::scheduler {
namespace {

// Doubles input "x" into output "y"; records the batch sizes it saw. The first call
// blocks until `gate` is released, so a test can pile requests up behind it.
class DoublingInstance : public runtime::ModelInstance {
 public:
  explicit DoublingInstance(std::shared_future<void> gate) : gate_(std::move(gate)) {}
  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs, const std::vector<std::string>&,
                                      runtime::ExecTimings*) override {
    if (calls_++ == 0) gate_.wait();
    const Tensor& x = inputs[0];
    batches.push_back(x.shape[0]);
    std::vector<float> v(x.byte_size() / 4);
    std::memcpy(v.data(), x.data(), x.byte_size());
    for (float& f : v) f *= 2;
    Tensor y;
    y.name = "y";
    y.datatype = DataType::kFp32;
    y.shape = x.shape;
    y.Own(std::string(reinterpret_cast<char*>(v.data()), x.byte_size()));
    return std::vector<Tensor>{y};
  }
  // Triples "x" into "attributions", counting its calls (JobKind::kExplain).
  Result<std::vector<Tensor>> Explain(const std::vector<Tensor>& inputs, runtime::ExecTimings*) override {
    explained.push_back(inputs[0].shape[0]);
    std::vector<float> v(inputs[0].byte_size() / 4);
    std::memcpy(v.data(), inputs[0].data(), inputs[0].byte_size());
    for (float& f : v) f *= 3;
    Tensor y;
    y.name = "attributions";
    y.datatype = DataType::kFp32;
    y.shape = inputs[0].shape;
    y.Own(std::string(reinterpret_cast<char*>(v.data()), inputs[0].byte_size()));
    return std::vector<Tensor>{y};
  }
  std::vector<int64_t> batches;
  std::vector<int64_t> explained;

 private:
  std::shared_future<void> gate_;
  int calls_ = 0;
};

struct Outcome {
  std::vector<float> y;
  JobReport report;
};

Job MakeJob(std::vector<float> rows, std::promise<Outcome>* out) {
  Job j;
  Tensor x;
  x.name = "x";
  x.datatype = DataType::kFp32;
  x.shape = {static_cast<int64_t>(rows.size()), 1};
  x.Own(std::string(reinterpret_cast<char*>(rows.data()), rows.size() * 4));
  j.inputs.push_back(x);
  j.outputs = {"y"};
  j.batch_size = x.shape[0];
  j.done = [out](Result<std::vector<Tensor>> r, const JobReport& report) {
    Outcome o;
    o.report = report;
    if (r.ok()) {
      o.y.resize((*r)[0].byte_size() / 4);
      std::memcpy(o.y.data(), (*r)[0].data(), (*r)[0].byte_size());
    }
    out->set_value(o);
  };
  return j;
}

TEST(DynamicBatcherTest, RequestsQueuedBehindABusyInstanceRunAsOneBatch) {
  auto config = repository::ParseTritonConfig("name: \"m\" max_batch_size: 8 dynamic_batching { }");
  ASSERT_TRUE(config.ok());
  std::promise<void> gate;
  auto instance = std::make_unique<DoublingInstance>(gate.get_future().share());
  DoublingInstance* seen = instance.get();
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
  instances.push_back(std::move(instance));
  DynamicBatcher batcher(std::move(instances), *config, SystemClock::Get());

  std::promise<Outcome> first, a, b, c;
  ASSERT_TRUE(batcher.Submit(MakeJob({1}, &first)).ok());
  while (batcher.queue_depth() != 0) std::this_thread::yield();  // the instance took it
  ASSERT_TRUE(batcher.Submit(MakeJob({10, 11}, &a)).ok());
  ASSERT_TRUE(batcher.Submit(MakeJob({20}, &b)).ok());
  ASSERT_TRUE(batcher.Submit(MakeJob({30, 31, 32}, &c)).ok());
  EXPECT_EQ(batcher.queue_depth(), 3u);
  gate.set_value();

  EXPECT_EQ(first.get_future().get().y, (std::vector<float>{2}));
  Outcome oa = a.get_future().get(), ob = b.get_future().get(), oc = c.get_future().get();
  EXPECT_EQ(oa.y, (std::vector<float>{20, 22}));
  EXPECT_EQ(ob.y, (std::vector<float>{40}));
  EXPECT_EQ(oc.y, (std::vector<float>{60, 62, 64}));
  batcher.Stop();
  EXPECT_EQ(seen->batches, (std::vector<int64_t>{1, 6}));
  // One execution of 6 rows, reported once.
  EXPECT_EQ(oa.report.executed_batch_size, 6);
  EXPECT_TRUE(oa.report.counts_execution);
  EXPECT_FALSE(ob.report.counts_execution);
  EXPECT_FALSE(oc.report.counts_execution);
}

TEST(DynamicBatcherTest, AnExplainJobRunsAloneThroughExplain) {
  auto config = repository::ParseTritonConfig("name: \"m\" max_batch_size: 8 dynamic_batching { }");
  ASSERT_TRUE(config.ok());
  std::promise<void> gate;
  auto instance = std::make_unique<DoublingInstance>(gate.get_future().share());
  DoublingInstance* seen = instance.get();
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
  instances.push_back(std::move(instance));
  DynamicBatcher batcher(std::move(instances), *config, SystemClock::Get());

  std::promise<Outcome> first, a, e, b;
  ASSERT_TRUE(batcher.Submit(MakeJob({1}, &first)).ok());
  while (batcher.queue_depth() != 0) std::this_thread::yield();
  ASSERT_TRUE(batcher.Submit(MakeJob({10, 11}, &a)).ok());
  Job explain = MakeJob({5, 6}, &e);
  explain.kind = JobKind::kExplain;
  ASSERT_TRUE(batcher.Submit(std::move(explain)).ok());
  ASSERT_TRUE(batcher.Submit(MakeJob({20}, &b)).ok());
  gate.set_value();

  EXPECT_EQ(first.get_future().get().y, (std::vector<float>{2}));
  EXPECT_EQ(a.get_future().get().y, (std::vector<float>{20, 22}));
  EXPECT_EQ(e.get_future().get().y, (std::vector<float>{15, 18}));
  EXPECT_EQ(b.get_future().get().y, (std::vector<float>{40}));
  batcher.Stop();
  // The two predictions still shared one execution; the explanation ran on its own.
  EXPECT_EQ(seen->batches, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(seen->explained, (std::vector<int64_t>{2}));
}

TEST(DynamicBatcherTest, StopRunsWhatIsQueuedAndRefusesMore) {
  auto config = repository::ParseTritonConfig(
      "name: \"m\" max_batch_size: 8 dynamic_batching { max_queue_delay_microseconds: 60000000 }");
  std::promise<void> gate;
  gate.set_value();
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
  instances.push_back(std::make_unique<DoublingInstance>(gate.get_future().share()));
  DynamicBatcher batcher(std::move(instances), *config, SystemClock::Get());
  std::promise<Outcome> a;
  ASSERT_TRUE(batcher.Submit(MakeJob({5}, &a)).ok());  // would wait a minute for company
  batcher.Stop();                                      // ...but shutdown runs it now
  EXPECT_EQ(a.get_future().get().y, (std::vector<float>{10}));
  std::promise<Outcome> late;
  EXPECT_EQ(batcher.Submit(MakeJob({1}, &late)).code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ferry::scheduler

namespace ferry::scheduler {
namespace {

TEST(DynamicBatcherTest, CancelledQueuedRequestsNeverRun) {
  auto config = repository::ParseTritonConfig("name: \"m\" max_batch_size: 8 dynamic_batching { }");
  std::promise<void> gate;
  auto instance = std::make_unique<DoublingInstance>(gate.get_future().share());
  DoublingInstance* seen = instance.get();
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
  instances.push_back(std::move(instance));
  DynamicBatcher batcher(std::move(instances), *config, SystemClock::Get());

  std::promise<Outcome> busy, gone, kept;
  ASSERT_TRUE(batcher.Submit(MakeJob({1}, &busy)).ok());
  while (batcher.queue_depth() != 0) std::this_thread::yield();  // the instance is busy
  std::atomic<bool> client_left{false};
  Job j = MakeJob({2}, &gone);
  j.cancelled = [&client_left] { return client_left.load(); };
  ASSERT_TRUE(batcher.Submit(std::move(j)).ok());
  ASSERT_TRUE(batcher.Submit(MakeJob({4}, &kept)).ok());
  client_left = true;  // the client of the first queued request goes away
  gate.set_value();

  EXPECT_TRUE(gone.get_future().get().y.empty());  // answered with an error, never run
  EXPECT_EQ(kept.get_future().get().y, (std::vector<float>{8}));
  batcher.Stop();
  EXPECT_EQ(seen->batches, (std::vector<int64_t>{1, 1}));  // the second batch lacks it
}

}  // namespace
}  // namespace ferry::scheduler

namespace ferry::scheduler {
namespace {

// Doubles "x"; holds any execution whose first value is 1 until `gate` opens.
class HoldOnesInstance : public runtime::ModelInstance {
 public:
  HoldOnesInstance(std::shared_future<void> gate, std::atomic<int>* executed) : gate_(std::move(gate)), executed_(executed) {}
  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs, const std::vector<std::string>&,
                                      runtime::ExecTimings*) override {
    float first;
    std::memcpy(&first, inputs[0].data(), 4);
    if (first == 1.0f) gate_.wait();
    Tensor y = inputs[0];
    y.name = "y";
    ++*executed_;
    return std::vector<Tensor>{y};
  }

 private:
  std::shared_future<void> gate_;
  std::atomic<int>* executed_;
};

TEST(DynamicBatcherTest, PreserveOrderingHoldsLaterResponsesBack) {
  auto config = repository::ParseTritonConfig(
      "name: \"m\" max_batch_size: 1 dynamic_batching { preserve_ordering: true }");
  std::promise<void> gate;
  std::atomic<int> executed{0};
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
  std::shared_future<void> opened = gate.get_future().share();
  for (int i = 0; i < 2; ++i) instances.push_back(std::make_unique<HoldOnesInstance>(opened, &executed));
  DynamicBatcher batcher(std::move(instances), *config, SystemClock::Get());

  std::mutex mu;
  std::vector<int> order;
  std::promise<void> all_done;
  auto job = [&](float v) {
    std::promise<Outcome> unused;
    Job j = MakeJob({v}, &unused);
    j.done = [&, v](Result<std::vector<Tensor>>, const JobReport&) {
      std::lock_guard lock(mu);
      order.push_back(static_cast<int>(v));
      if (order.size() == 2) all_done.set_value();
    };
    return j;
  };
  ASSERT_TRUE(batcher.Submit(job(1)).ok());  // held on one instance
  ASSERT_TRUE(batcher.Submit(job(2)).ok());  // runs at once on the other
  while (executed.load() < 1) std::this_thread::yield();
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(order.empty());  // 2 finished first but must wait for 1
  }
  gate.set_value();
  all_done.get_future().wait();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  batcher.Stop();
}

}  // namespace
}  // namespace ferry::scheduler
