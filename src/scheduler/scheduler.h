#pragma once

#include <cstdint>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/tensor.h"
#include "runtime/runtime.h"

namespace ferry::scheduler {

// How a job ran, reported with its result.
struct JobReport {
  uint64_t queue_ns = 0;           // time from Submit to the start of its execution
  runtime::ExecTimings timings;    // the execution's phases (shared by a whole batch)
  int64_t executed_batch_size = 1;  // rows in the execution this job was part of
  bool counts_execution = true;     // true for exactly one job per execution
  bool ran_inline = false;          // executed on the submitting thread (Job::may_run_inline)
};

// What a job asks of the instance.
enum class JobKind {
  kInfer,    // ModelInstance::Execute; may share an execution with other jobs
  kExplain,  // ModelInstance::Explain; always runs alone (its `outputs` are unused)
};

// One request's work: its validated inputs and the outputs it wants.
struct Job {
  JobKind kind = JobKind::kInfer;
  std::vector<Tensor> inputs;
  std::vector<std::string> outputs;
  int64_t batch_size = 1;    // rows along the batch dimension (1 for non-batching models)
  uint32_t priority = 0;     // 0: the model's default level; 1 is the highest
  uint64_t timeout_us = 0;   // 0: the model's default queue timeout (if any)
  uint64_t enqueue_ns = 0;   // set by Submit
  uint64_t deadline_ns = 0;  // set by Submit from the timeouts in force; 0: none
  // The submitter (an IO thread) lets Submit run the job itself when the scheduler
  // judges its execution tiny and an instance is free at once: `done` is then called
  // on the submitting thread before Submit returns. Schedulers without inline
  // execution ignore it.
  bool may_run_inline = false;
  // Returns true once the client has gone away (connection closed, call cancelled).
  // Empty: never. Called from scheduler threads; must be cheap and thread-safe.
  std::function<bool()> cancelled;
  // Called exactly once, on a worker thread (or the submitting one, see may_run_inline),
  // with the outputs (or the error). Must not block. A job whose Submit failed is
  // dropped without a call.
  std::function<void(Result<std::vector<Tensor>>, const JobReport&)> done;
};

// Decides when and with what each job runs on a model version's instances.
// Thread-safety: Submit and queue_depth are thread-safe; Stop is called once by the owner.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Queues `job`. OVERLOADED when the queue is full, UNAVAILABLE when stopping; the
  // job's callback is then never called.
  virtual Status Submit(Job job) = 0;
  // Finishes every queued job, then joins the workers.
  virtual void Stop() = 0;
  virtual size_t queue_depth() const = 0;
};

}  // namespace ferry::scheduler
