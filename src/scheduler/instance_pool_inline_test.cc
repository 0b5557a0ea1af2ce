#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "scheduler/instance_pool.h"

// Inline execution in the direct scheduler: which jobs run on the submitting thread.
namespace ferry::scheduler {
namespace {

using namespace std::chrono_literals;

// Records the thread of its last execution; sleeps `delay` first; waits for `release`
// when given.
class RecordingInstance : public runtime::ModelInstance {
 public:
  RecordingInstance(bool on_caller, std::chrono::microseconds delay = 0us, std::shared_future<void> release = {})
      : on_caller_(on_caller), delay_(delay), release_(std::move(release)) {}
  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>&, const std::vector<std::string>&,
                                      runtime::ExecTimings*) override {
    if (release_.valid()) release_.wait();
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    Tensor t;
    t.name = "y";
    t.datatype = DataType::kUint8;
    t.shape = {1};
    t.Own(std::string("y"));
    return std::vector<Tensor>{t};
  }
  bool computes_on_caller() const override { return on_caller_; }

 private:
  const bool on_caller_;
  const std::chrono::microseconds delay_;
  std::shared_future<void> release_;
};

struct Outcome {
  std::thread::id thread;
  bool ran_inline = false;
  bool ok = false;
};

Job MakeJob(bool may_run_inline, std::promise<Outcome>* out) {
  Job job;
  job.outputs = {"y"};
  job.may_run_inline = may_run_inline;
  job.done = [out](Result<std::vector<Tensor>> r, const JobReport& report) {
    out->set_value({std::this_thread::get_id(), report.ran_inline, r.ok()});
  };
  return job;
}

// Runs `n` jobs one after another (each waited for), so the gate sees `n` executions.
void Warm(InstancePool& pool, int n, bool may_run_inline = false) {
  for (int i = 0; i < n; ++i) {
    std::promise<Outcome> p;
    ASSERT_TRUE(pool.Submit(MakeJob(may_run_inline, &p)).ok());
    ASSERT_TRUE(p.get_future().get().ok);
  }
}

// Warms the gate, then submits inline-eligible jobs until one runs inline (the last
// warm-up job's worker may still be handing its instance back). An inline run frees
// its instance before Submit returns, so the instance is free afterwards.
void WarmUntilInline(InstancePool& pool) {
  Warm(pool, InlineGate::kDefaultMinObservations);
  for (int i = 0; i < 10000; ++i) {
    std::promise<Outcome> p;
    auto f = p.get_future();
    ASSERT_TRUE(pool.Submit(MakeJob(true, &p)).ok());
    if (f.get().ran_inline) return;
    std::this_thread::yield();
  }
  FAIL() << "no job ran inline";
}

std::unique_ptr<InstancePool> MakePool(std::unique_ptr<runtime::ModelInstance> instance, uint64_t threshold_ns) {
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
  instances.push_back(std::move(instance));
  InstancePoolOptions options;
  options.inline_execution_ns = threshold_ns;
  return std::make_unique<InstancePool>(std::move(instances), options, "m");
}

// A generous threshold: these tests are about who runs a job, not about timing.
constexpr uint64_t kGenerous = 20'000'000;  // 20 ms

TEST(InstancePoolInlineTest, TinyModelRunsOnTheSubmitterOnceMeasured) {
  auto pool = MakePool(std::make_unique<RecordingInstance>(true), kGenerous);
  // Not yet measured: the first jobs run on workers, even when they allow inline.
  std::promise<Outcome> first;
  ASSERT_TRUE(pool->Submit(MakeJob(true, &first)).ok());
  Outcome o = first.get_future().get();
  EXPECT_FALSE(o.ran_inline);
  EXPECT_NE(o.thread, std::this_thread::get_id());
  ASSERT_NO_FATAL_FAILURE(WarmUntilInline(*pool));

  std::promise<Outcome> p;
  auto f = p.get_future();
  ASSERT_TRUE(pool->Submit(MakeJob(true, &p)).ok());
  // Answered before Submit returned, on this thread.
  ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
  o = f.get();
  EXPECT_TRUE(o.ok);
  EXPECT_TRUE(o.ran_inline);
  EXPECT_EQ(o.thread, std::this_thread::get_id());

  // A job that does not allow it still goes to a worker.
  std::promise<Outcome> q;
  ASSERT_TRUE(pool->Submit(MakeJob(false, &q)).ok());
  o = q.get_future().get();
  EXPECT_FALSE(o.ran_inline);
  EXPECT_NE(o.thread, std::this_thread::get_id());
}

TEST(InstancePoolInlineTest, DisabledOrOutOfProcessInstancesNeverRunInline) {
  auto disabled = MakePool(std::make_unique<RecordingInstance>(true), 0);
  auto remote = MakePool(std::make_unique<RecordingInstance>(false), kGenerous);
  for (InstancePool* pool : {disabled.get(), remote.get()}) {
    Warm(*pool, 20, /*may_run_inline=*/true);
    std::promise<Outcome> p;
    ASSERT_TRUE(pool->Submit(MakeJob(true, &p)).ok());
    Outcome o = p.get_future().get();
    EXPECT_FALSE(o.ran_inline);
    EXPECT_NE(o.thread, std::this_thread::get_id());
  }
}

TEST(InstancePoolInlineTest, SlowModelNeverRunsInline) {
  // Every execution sleeps 2 ms, far over a 50 us threshold.
  auto pool = MakePool(std::make_unique<RecordingInstance>(true, 2000us), 50'000);
  for (int i = 0; i < 20; ++i) {
    std::promise<Outcome> p;
    ASSERT_TRUE(pool->Submit(MakeJob(true, &p)).ok());
    Outcome o = p.get_future().get();
    EXPECT_FALSE(o.ran_inline) << "job " << i;
    EXPECT_NE(o.thread, std::this_thread::get_id());
  }
}

TEST(InstancePoolInlineTest, BusyInstanceQueuesInsteadOfWaiting) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  // The instance blocks on `release` only once armed, after warming up.
  auto gate_open = std::make_shared<std::atomic<bool>>(false);
  class Gated : public RecordingInstance {
   public:
    Gated(std::shared_future<void> r, std::shared_ptr<std::atomic<bool>> armed)
        : RecordingInstance(true), r_(std::move(r)), armed_(std::move(armed)) {}
    Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& in, const std::vector<std::string>& out,
                                        runtime::ExecTimings* t) override {
      if (armed_->exchange(false)) r_.wait();
      return RecordingInstance::Execute(in, out, t);
    }

   private:
    std::shared_future<void> r_;
    std::shared_ptr<std::atomic<bool>> armed_;
  };
  auto pool = MakePool(std::make_unique<Gated>(released, gate_open), kGenerous);
  Warm(*pool, InlineGate::kDefaultMinObservations);

  // A worker holds the only instance...
  gate_open->store(true);
  std::promise<Outcome> held;
  ASSERT_TRUE(pool->Submit(MakeJob(false, &held)).ok());
  while (gate_open->load()) std::this_thread::yield();
  // ...so an inline-eligible job is queued (Submit returns at once) and a worker runs it.
  std::promise<Outcome> queued;
  auto f = queued.get_future();
  ASSERT_TRUE(pool->Submit(MakeJob(true, &queued)).ok());
  EXPECT_EQ(f.wait_for(0s), std::future_status::timeout);
  release.set_value();
  Outcome o = f.get();
  EXPECT_FALSE(o.ran_inline);
  EXPECT_NE(o.thread, std::this_thread::get_id());
  EXPECT_TRUE(held.get_future().get().ok);
}

TEST(InstancePoolInlineTest, JobsQueuedDuringAnInlineRunGoToAWorker) {
  // The inline job blocks until a second job has been queued behind it from another
  // thread; that one must then run on a worker, not on the inline caller.
  auto armed = std::make_shared<std::atomic<bool>>(false);
  std::promise<void> second_queued;
  std::shared_future<void> queued_f = second_queued.get_future().share();
  class Waiting : public RecordingInstance {
   public:
    Waiting(std::shared_future<void> w, std::shared_ptr<std::atomic<bool>> armed)
        : RecordingInstance(true), w_(std::move(w)), armed_(std::move(armed)) {}
    Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& in, const std::vector<std::string>& out,
                                        runtime::ExecTimings* t) override {
      if (armed_->exchange(false)) w_.wait();
      return RecordingInstance::Execute(in, out, t);
    }

   private:
    std::shared_future<void> w_;
    std::shared_ptr<std::atomic<bool>> armed_;
  };
  auto pool = MakePool(std::make_unique<Waiting>(queued_f, armed), kGenerous);
  ASSERT_NO_FATAL_FAILURE(WarmUntilInline(*pool));
  armed->store(true);
  std::promise<Outcome> first, second;
  std::thread other([&] {
    while (armed->load()) std::this_thread::yield();  // the inline run has started
    EXPECT_TRUE(pool->Submit(MakeJob(true, &second)).ok());
    second_queued.set_value();
  });
  ASSERT_TRUE(pool->Submit(MakeJob(true, &first)).ok());
  other.join();
  Outcome a = first.get_future().get();
  Outcome b = second.get_future().get();
  EXPECT_TRUE(a.ran_inline);
  EXPECT_EQ(a.thread, std::this_thread::get_id());
  EXPECT_FALSE(b.ran_inline);
  EXPECT_NE(b.thread, std::this_thread::get_id());
  pool->Stop();
}

}  // namespace
}  // namespace ferry::scheduler
