#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "repository/model_config.pb.h"
#include "scheduler/batch_queue.h"
#include "scheduler/execution_watch.h"
#include "scheduler/ordered_completion.h"
#include "scheduler/scheduler.h"

namespace ferry::scheduler {

// The dynamic batching scheduler: requests wait in a BatchQueue; each model instance has
// a worker thread that, when free, takes the next batch the queue's policy forms, joins
// the requests' inputs along the batch dimension, runs the instance once, and hands
// every request its own slice of the outputs (slices borrow the batch's buffers). With
// preserve_ordering, responses leave in the order the requests arrived, even when several
// instances finish batches out of order.
// Thread-safety: Submit/queue_depth are thread-safe; Stop is called once by the owner.
class DynamicBatcher : public Scheduler {
 public:
  // `clock` is not owned and must outlive the batcher.
  DynamicBatcher(std::vector<std::unique_ptr<runtime::ModelInstance>> instances, const inference::ModelConfig& config,
                 const Clock* clock, ExecutionWatch* watch = ExecutionWatch::Default());
  ~DynamicBatcher() override;

  Status Submit(Job job) override;
  void Stop() override;
  size_t queue_depth() const override;

 private:
  void WorkerLoop(runtime::ModelInstance* instance);
  void Run(runtime::ModelInstance* instance, std::vector<Job> batch);
  // Runs one JobKind::kExplain job (already checked as wanted) on its own.
  void RunExplain(runtime::ModelInstance* instance, Job job);

  const std::string name_;
  const Clock* clock_;
  ExecutionWatch* watch_;  // not owned
  const bool preserve_ordering_;
  OrderedCompletion order_;  // used when preserve_ordering_
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  BatchQueue queue_;       // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  int idle_workers_ = 0;   // guarded by mu_
  int timed_idle_ = 0;     // guarded by mu_: idle workers waiting for a batch delay
  uint64_t timed_wake_at_ = 0;  // guarded by mu_: when the last of them to wait planned to wake
  std::vector<std::thread> workers_;
};

}  // namespace ferry::scheduler
