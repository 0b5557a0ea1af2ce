#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/tensor.h"
#include "core/worker_pool.h"
#include "runtime/runtime.h"
#include "scheduler/execution_watch.h"
#include "scheduler/inline_gate.h"
#include "scheduler/scheduler.h"

namespace ferry::scheduler {

struct InstancePoolOptions {
  // 0: unbounded. When the queue holds this many jobs, Submit fails OVERLOADED at once.
  size_t max_queue_size = 0;
  // Inline execution: a job that allows it (Job::may_run_inline) runs on the thread
  // that submits it when the queue is empty, an instance is free at once, every
  // instance computes on its caller (ModelInstance::computes_on_caller) and the recent
  // executions averaged at most this many nanoseconds per row times the job's rows
  // (InlineGate). It saves the hand-off to a worker and back. 0: never.
  uint64_t inline_execution_ns = 0;
};

// The direct scheduler: a FIFO of jobs served by N model instances, each running one
// job (one request) at a time. An instance runs on the process-wide WorkerPool while
// it has jobs, so an idle model holds no thread; an instance that needs a thread of its
// own (ModelInstance::needs_own_thread, a plugin's) gets a one-thread pool of its own,
// started at its first job. No model work runs on the caller, except a job of a model
// measured as tiny that asks for it (InstancePoolOptions::inline_execution_ns). A job's
// timeout_us, when set, bounds its time in the queue.
// Thread-safety: Submit is thread-safe; Stop is called once, by the owner.
class InstancePool : public Scheduler {
 public:
  // `watch` (not owned) stops executions nobody waits for; default: the process-wide
  // one. `pool` (not owned): where instances that share threads run; default the
  // process-wide one.
  InstancePool(std::vector<std::unique_ptr<runtime::ModelInstance>> instances, InstancePoolOptions options,
               std::string name, ExecutionWatch* watch = ExecutionWatch::Default(),
               WorkerPool* pool = WorkerPool::Shared());
  ~InstancePool() override;  // calls Stop()

  InstancePool(const InstancePool&) = delete;
  InstancePool& operator=(const InstancePool&) = delete;

  Status Submit(Job job) override;
  // Refuses new jobs, waits for every queued job to finish.
  void Stop() override;
  size_t queue_depth() const override;

 private:
  struct Slot {
    runtime::ModelInstance* instance;  // owned by instances_
    WorkerPool* pool;                  // the shared pool, or own_thread (owned here)
    std::unique_ptr<WorkerPool> own_thread;
  };
  // Runs queued jobs on `slot`'s instance until the queue is empty, then frees it.
  void Drain(Slot* slot);
  void RunJob(runtime::ModelInstance* instance, Job job, bool inline_run);
  // Runs `job` on the calling thread when the gate allows it and an instance is free
  // with nothing queued; false (the job untouched) otherwise.
  bool TryRunInline(Job& job);

  const InstancePoolOptions options_;
  const std::string name_;
  ExecutionWatch* watch_;
  InlineGate gate_;
  bool inline_capable_ = false;  // every instance computes on its caller
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances_;
  std::vector<Slot> slots_;  // one per instance; never resized after construction
  mutable std::mutex mu_;
  std::condition_variable drained_cv_;  // every slot is free again
  std::deque<Job> queue_;               // guarded by mu_
  std::vector<Slot*> free_;             // slots with no Drain running; guarded by mu_
  bool stopping_ = false;               // guarded by mu_
};

}  // namespace ferry::scheduler
