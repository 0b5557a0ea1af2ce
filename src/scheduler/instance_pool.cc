#include "scheduler/instance_pool.h"

#include "core/clock.h"

namespace ferry::scheduler {

InstancePool::InstancePool(std::vector<std::unique_ptr<runtime::ModelInstance>> instances,
                           InstancePoolOptions options, std::string name, ExecutionWatch* watch, WorkerPool* pool)
    : options_(options), name_(std::move(name)), watch_(watch), instances_(std::move(instances)) {
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
    RunJob(slot->instance, std::move(job));
  }
}

void InstancePool::RunJob(runtime::ModelInstance* instance, Job job) {
  JobReport report;
  report.queue_ns = NowNanos() - job.enqueue_ns;
  report.executed_batch_size = job.batch_size;
  if (Status unwanted = ExecutionWatch::Unwanted(job, NowNanos()); !unwanted.ok()) {
    job.inputs.clear();
    job.done(Status(unwanted.code(), "model '" + name_ + "': " + unwanted.message()), report);
    return;
  }
  uint64_t ticket = watch_->Begin(instance, std::span<const Job>(&job, 1));
  auto result = job.kind == JobKind::kExplain ? instance->Explain(job.inputs, &report.timings)
                                             : instance->Execute(job.inputs, job.outputs, &report.timings);
  watch_->End(ticket);
  if (!result.ok() && result.status().code() == StatusCode::kCancelled) {
    Status why = ExecutionWatch::Unwanted(job, NowNanos());
    if (!why.ok()) result = Status(why.code(), "model '" + name_ + "': " + why.message());
  }
  job.inputs.clear();  // release request buffers before the callback sends the reply
  job.done(std::move(result), report);
}

}  // namespace ferry::scheduler
