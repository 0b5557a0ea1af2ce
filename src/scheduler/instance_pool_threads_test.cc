#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "scheduler/instance_pool.h"

// Which threads the direct scheduler runs instances on (core/worker_pool.h).
namespace ferry::scheduler {
namespace {

using namespace std::chrono_literals;

// Waits (up to 10 s) for `pred`; the pool's threads exit asynchronously.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 1000 && !pred(); ++i) std::this_thread::sleep_for(10ms);
  return pred();
}

// An instance that records the threads it ran on.
class ThreadRecordingInstance : public runtime::ModelInstance {
 public:
  explicit ThreadRecordingInstance(bool own) : own_(own) {}
  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>&, const std::vector<std::string>&,
                                      runtime::ExecTimings*) override {
    std::lock_guard lock(mu_);
    threads_.insert(std::this_thread::get_id());
    return std::vector<Tensor>{};
  }
  bool needs_own_thread() const override { return own_; }
  size_t distinct_threads() {
    std::lock_guard lock(mu_);
    return threads_.size();
  }

 private:
  const bool own_;
  std::mutex mu_;
  std::set<std::thread::id> threads_;
};

TEST(InstancePoolThreads, AnIdleModelHoldsNoThreadOfTheSharedPool) {
  WorkerPool shared(WorkerPoolOptions{0, 50ms});
  std::vector<std::unique_ptr<InstancePool>> models;
  for (int m = 0; m < 50; ++m) {
    std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
    instances.push_back(std::make_unique<ThreadRecordingInstance>(false));
    models.push_back(std::make_unique<InstancePool>(std::move(instances), InstancePoolOptions{}, "m" + std::to_string(m),
                                                    ExecutionWatch::Default(), &shared));
  }
  EXPECT_EQ(shared.threads(), 0u);
  std::vector<std::promise<void>> done(models.size());
  for (size_t m = 0; m < models.size(); ++m) {
    Job job;
    job.done = [&done, m](Result<std::vector<Tensor>>, const JobReport&) { done[m].set_value(); };
    ASSERT_TRUE(models[m]->Submit(std::move(job)).ok());
  }
  for (auto& d : done) ASSERT_EQ(d.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(Eventually([&] { return shared.threads() == 0; })) << shared.threads() << " threads left";
  models.clear();
}

TEST(InstancePoolThreads, AnInstanceThatNeedsItsOwnThreadAlwaysGetsTheSameOne) {
  WorkerPool shared(WorkerPoolOptions{0, 1ms});
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
  auto own = std::make_unique<ThreadRecordingInstance>(true);
  auto* own_ptr = own.get();
  instances.push_back(std::move(own));
  InstancePool pool(std::move(instances), InstancePoolOptions{}, "own", ExecutionWatch::Default(), &shared);
  for (int i = 0; i < 20; ++i) {
    std::promise<void> done;
    Job job;
    job.done = [&done](Result<std::vector<Tensor>>, const JobReport&) { done.set_value(); };
    ASSERT_TRUE(pool.Submit(std::move(job)).ok());
    done.get_future().wait();
    std::this_thread::sleep_for(2ms);  // longer than the shared pool's idle timeout
  }
  EXPECT_EQ(own_ptr->distinct_threads(), 1u);
  EXPECT_EQ(shared.threads(), 0u);  // it never used the shared pool
}

}  // namespace
}  // namespace ferry::scheduler
