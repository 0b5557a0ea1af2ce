#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "core/tensor.h"
#include "runtime/runtime.h"
#include "scheduler/execution_watch.h"
#include "scheduler/scheduler.h"

namespace ferry::scheduler {

struct InstancePoolOptions {
  // 0: unbounded. When the queue holds this many jobs, Submit fails OVERLOADED at once.
  size_t max_queue_size = 0;
};

// The direct scheduler: a FIFO of jobs served by N model instances, each on its own
// worker thread running one job (one request) at a time. No model work ever runs on
// the caller. A job's timeout_us, when set, bounds its time in the queue.
// Thread-safety: Submit is thread-safe; Stop is called once, by the owner.
class InstancePool : public Scheduler {
 public:
  // `watch` (not owned) stops executions nobody waits for; default: the process-wide one.
  InstancePool(std::vector<std::unique_ptr<runtime::ModelInstance>> instances, InstancePoolOptions options,
               std::string name, ExecutionWatch* watch = ExecutionWatch::Default());
  ~InstancePool() override;  // calls Stop()

  InstancePool(const InstancePool&) = delete;
  InstancePool& operator=(const InstancePool&) = delete;

  Status Submit(Job job) override;
  void Stop() override;
  size_t queue_depth() const override;

 private:
  void WorkerLoop(runtime::ModelInstance* instance);

  const InstancePoolOptions options_;
  const std::string name_;
  ExecutionWatch* watch_;
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  int idle_workers_ = 0;   // workers waiting on cv_; guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace ferry::scheduler
