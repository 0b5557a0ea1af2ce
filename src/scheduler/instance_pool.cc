#include "scheduler/instance_pool.h"

#include "core/clock.h"

namespace ferry::scheduler {

InstancePool::InstancePool(std::vector<std::unique_ptr<runtime::ModelInstance>> instances,
                           InstancePoolOptions options, std::string name, ExecutionWatch* watch, WorkerPool* pool)
    : options_(options),
      name_(std::move(name)),
      watch_(watch),
      gate_(options.inline_execution_ns),
      instances_(std::move(instances)) {
  inline_capable_ = options_.inline_execution_ns > 0 && !instances_.empty();
  for (auto& inst : instances_)
    if (!inst->computes_on_caller() || inst->needs_own_thread()) inline_capable_ = false;
  slots_.reserve(instances_.size());
  for (auto& inst : instances_) {
    Slot slot{inst.get(), pool, nullptr};
    if (inst->needs_own_thread()) {
      // One thread that never expires: the instance always runs on the same thread.
      slot.own_thread = std::make_unique<WorkerPool>(WorkerPoolOptions{1, std::chrono::milliseconds(0)});
      slot.pool = slot.own_thread.get();
    }
    slots_.push_back(std::move(slot));
  }
  // Handed out from the back: the first instance takes the first job.
  for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) free_.push_back(&*it);
}

InstancePool::~InstancePool() { Stop(); }

Status InstancePool::Submit(Job job) {
  job.enqueue_ns = NowNanos();
  job.deadline_ns = job.timeout_us > 0 ? job.enqueue_ns + job.timeout_us * 1000 : 0;
  if (TryRunInline(job)) return Status::Ok();
  Slot* slot = nullptr;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Unavailable("model '" + name_ + "' is unloading");
    if (options_.max_queue_size > 0 && queue_.size() >= options_.max_queue_size)
      return Overloaded("model '" + name_ + "': the request queue is full (max_queue_size " +
                         std::to_string(options_.max_queue_size) + ")");
    queue_.push_back(std::move(job));
    // A busy instance takes the next job when it finishes its own; only a free one
    // needs a thread.
    if (free_.empty()) return Status::Ok();
    slot = free_.back();
    free_.pop_back();
  }
  slot->pool->Run([this, slot] { Drain(slot); });
  return Status::Ok();
}

bool InstancePool::TryRunInline(Job& job) {
  // Explanations run many executions; only a plain inference is measured by the gate.
  if (!job.may_run_inline || job.kind != JobKind::kInfer || !inline_capable_ || !gate_.Allows(job.batch_size))
    return false;
  Slot* slot = nullptr;
  {
    std::lock_guard lock(mu_);
    // A queued job would be overtaken; while stopping, Submit's own path refuses it.
    if (stopping_ || !queue_.empty() || free_.empty()) return false;
    slot = free_.back();
    free_.pop_back();
  }
  // The client-gone probe is left out: the request was read on this thread moments ago,
  // and the watch (which polls every few milliseconds) would not look at an execution
  // this short. Leaving it out saves a system call and the watch's registration. A
  // deadline still registers, so it holds during the execution as on a worker.
  job.cancelled = nullptr;
  RunJob(slot->instance, std::move(job), /*inline_run=*/true);
  bool idle = false;
  {
    std::lock_guard lock(mu_);
    if (queue_.empty()) {
      free_.push_back(slot);
      if (free_.size() == slots_.size()) drained_cv_.notify_all();
      idle = true;
    }
  }
  // Jobs queued meanwhile (they found no free instance) go to a worker, not this thread.
  if (!idle) slot->pool->Run([this, slot] { Drain(slot); });
  return true;
}

void InstancePool::Stop() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  // Queued jobs still run: a job is queued only while some instance drains the queue.
  drained_cv_.wait(lock, [this] { return free_.size() == slots_.size(); });
}

size_t InstancePool::queue_depth() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void InstancePool::Drain(Slot* slot) {
  for (;;) {
    Job job;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) {
        free_.push_back(slot);
        // Last touch of this pool: Stop may return, and the pool go, once mu_ is released.
        if (free_.size() == slots_.size()) drained_cv_.notify_all();
        return;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    RunJob(slot->instance, std::move(job), /*inline_run=*/false);
  }
}

void InstancePool::RunJob(runtime::ModelInstance* instance, Job job, bool inline_run) {
  JobReport report;
  const uint64_t begin = NowNanos();
  report.queue_ns = begin - job.enqueue_ns;
  report.executed_batch_size = job.batch_size;
  report.ran_inline = inline_run;
  if (Status unwanted = ExecutionWatch::Unwanted(job, NowNanos()); !unwanted.ok()) {
    job.inputs.clear();
    job.done(Status(unwanted.code(), "model '" + name_ + "': " + unwanted.message()), report);
    return;
  }
  uint64_t ticket = watch_->Begin(instance, std::span<const Job>(&job, 1));
  auto result = job.kind == JobKind::kExplain ? instance->Explain(job.inputs, &report.timings)
                                             : instance->Execute(job.inputs, job.outputs, &report.timings);
  watch_->End(ticket);
  if (job.kind == JobKind::kInfer && inline_capable_) gate_.Observe(NowNanos() - begin, job.batch_size);
  if (!result.ok() && result.status().code() == StatusCode::kCancelled) {
    Status why = ExecutionWatch::Unwanted(job, NowNanos());
    if (!why.ok()) result = Status(why.code(), "model '" + name_ + "': " + why.message());
  }
  job.inputs.clear();  // release request buffers before the callback sends the reply
  job.done(std::move(result), report);
}

}  // namespace ferry::scheduler
