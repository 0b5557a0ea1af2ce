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

namespace ferry::scheduler {

// One unit of work: the validated inputs of one request and the outputs it wants.
struct Job {
  std::vector<Tensor> inputs;
  std::vector<std::string> outputs;
  uint64_t enqueue_ns = 0;
  // Called once on the worker thread with the outputs (or the error), the time the job
  // waited in the queue and the runtime's phase timings. Must not block.
  std::function<void(Result<std::vector<Tensor>>, uint64_t queue_ns, const runtime::ExecTimings&)> done;
};

struct InstancePoolOptions {
  // 0: unbounded. When the queue holds this many jobs, Submit fails UNAVAILABLE at once.
  size_t max_queue_size = 0;
};

// The direct scheduler: a FIFO of jobs served by N model instances, each on its own
// worker thread running one job at a time. No model work ever runs on the caller.
// Thread-safety: Submit is thread-safe; Stop is called once, by the owner.
class InstancePool {
 public:
  InstancePool(std::vector<std::unique_ptr<runtime::ModelInstance>> instances, InstancePoolOptions options,
               std::string name);
  ~InstancePool();  // calls Stop()

  InstancePool(const InstancePool&) = delete;
  InstancePool& operator=(const InstancePool&) = delete;

  // Queues `job`; UNAVAILABLE when the queue is full or the pool is stopping (the
  // job's callback is then not called).
  Status Submit(Job job);

  // Finishes every queued job, then joins the workers.
  void Stop();

  size_t queue_depth() const;

 private:
  void WorkerLoop(runtime::ModelInstance* instance);

  const InstancePoolOptions options_;
  const std::string name_;
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  int idle_workers_ = 0;   // workers waiting on cv_; guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace ferry::scheduler
