#include "scheduler/instance_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace ferry::scheduler {
namespace {

// Echoes its first input as output "y", after waiting for `release` when given.
class EchoInstance : public runtime::ModelInstance {
 public:
  explicit EchoInstance(std::shared_future<void> release = {}) : release_(std::move(release)) {}
  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs, const std::vector<std::string>&,
                                      runtime::ExecTimings*) override {
    if (release_.valid()) release_.wait();
    if (inputs.empty()) return InvalidArgument("no input");
    Tensor t = inputs[0];
    t.name = "y";
    return std::vector<Tensor>{t};
  }

 private:
  std::shared_future<void> release_;
};

Job MakeJob(std::string payload, std::promise<Result<std::vector<Tensor>>>* out) {
  Job job;
  Tensor t;
  t.name = "x";
  t.datatype = DataType::kUint8;
  t.shape = {static_cast<int64_t>(payload.size())};
  t.Own(std::move(payload));
  job.inputs.push_back(t);
  job.outputs = {"y"};
  job.done = [out](Result<std::vector<Tensor>> r, const JobReport&) { out->set_value(std::move(r)); };
  return job;
}

TEST(InstancePoolTest, RunsJobsAndReturnsEachResultToItsCaller) {
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
  instances.push_back(std::make_unique<EchoInstance>());
  instances.push_back(std::make_unique<EchoInstance>());
  InstancePool pool(std::move(instances), {}, "echo");
  std::vector<std::promise<Result<std::vector<Tensor>>>> results(50);
  for (size_t i = 0; i < results.size(); ++i) ASSERT_TRUE(pool.Submit(MakeJob(std::to_string(i), &results[i])).ok());
  for (size_t i = 0; i < results.size(); ++i) {
    auto r = results[i].get_future().get();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ((*r)[0].bytes(), std::to_string(i));
  }
}

TEST(InstancePoolTest, FullQueueRejectsAtOnceAndStopDrains) {
  std::promise<void> release;
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
  instances.push_back(std::make_unique<EchoInstance>(release.get_future().share()));
  InstancePool pool(std::move(instances), InstancePoolOptions{2}, "blocked");
  std::promise<Result<std::vector<Tensor>>> a, b, c, d;
  ASSERT_TRUE(pool.Submit(MakeJob("a", &a)).ok());
  // Wait until the worker has taken "a" so the queue holds exactly the next two.
  while (pool.queue_depth() != 0) std::this_thread::yield();
  ASSERT_TRUE(pool.Submit(MakeJob("b", &b)).ok());
  ASSERT_TRUE(pool.Submit(MakeJob("c", &c)).ok());
  Status full = pool.Submit(MakeJob("d", &d));
  EXPECT_EQ(full.code(), StatusCode::kOverloaded);
  EXPECT_NE(full.message().find("queue is full"), std::string::npos);
  release.set_value();
  pool.Stop();
  EXPECT_EQ((*a.get_future().get())[0].bytes(), "a");
  EXPECT_EQ((*c.get_future().get())[0].bytes(), "c");
  EXPECT_EQ(pool.Submit(MakeJob("late", &d)).code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ferry::scheduler
