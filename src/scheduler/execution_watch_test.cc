#include "scheduler/execution_watch.h"

#include <gtest/gtest.h>

#include <atomic>

namespace ferry::scheduler {
namespace {

class ManualClock : public Clock {
 public:
  uint64_t NowNanos() const override { return now.load(); }
  std::atomic<uint64_t> now{1000};
};

class CountingInstance : public runtime::ModelInstance {
 public:
  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>&, const std::vector<std::string>&,
                                      runtime::ExecTimings*) override {
    return std::vector<Tensor>{};
  }
  void Terminate() override { ++terminated; }
  int terminated = 0;
};

Job WithDeadline(uint64_t deadline, std::function<bool()> cancelled = {}) {
  Job j;
  j.deadline_ns = deadline;
  j.cancelled = std::move(cancelled);
  return j;
}

TEST(ExecutionWatchTest, StopsAnExecutionOnlyWhenNoRequestInItIsWanted) {
  ManualClock clock;
  ExecutionWatch watch(&clock, std::chrono::hours(1));  // the test steps it by hand
  CountingInstance inst;
  bool client_gone = false;
  std::vector<Job> jobs = {WithDeadline(2000), WithDeadline(0, [&] { return client_gone; })};
  uint64_t ticket = watch.Begin(&inst, jobs);
  ASSERT_NE(ticket, 0u);
  clock.now = 3000;  // the first request's deadline passed, the second is still wanted
  watch.CheckOnce();
  EXPECT_EQ(inst.terminated, 0);
  client_gone = true;  // now nobody waits
  watch.CheckOnce();
  EXPECT_EQ(inst.terminated, 1);
  watch.CheckOnce();
  EXPECT_EQ(inst.terminated, 1);  // once
  watch.End(ticket);
}

TEST(ExecutionWatchTest, NothingToWatchWithoutDeadlinesOrProbes) {
  ManualClock clock;
  ExecutionWatch watch(&clock, std::chrono::hours(1));
  CountingInstance inst;
  std::vector<Job> jobs = {WithDeadline(2000), WithDeadline(0)};
  EXPECT_EQ(watch.Begin(&inst, jobs), 0u);  // the second request can never be unwanted
  std::vector<Job> one = {WithDeadline(2000)};  // alive until End, as Begin requires
  uint64_t ticket = watch.Begin(&inst, one);
  watch.End(ticket);
  clock.now = 5000;
  watch.CheckOnce();
  EXPECT_EQ(inst.terminated, 0);  // ended executions are never stopped
}

TEST(ExecutionWatchTest, UnwantedNamesTheReason) {
  EXPECT_TRUE(ExecutionWatch::Unwanted(WithDeadline(2000), 1000).ok());
  EXPECT_EQ(ExecutionWatch::Unwanted(WithDeadline(2000), 2000).code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ExecutionWatch::Unwanted(WithDeadline(0, [] { return true; }), 0).code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace ferry::scheduler
