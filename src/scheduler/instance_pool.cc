#include "scheduler/instance_pool.h"

#include "core/clock.h"
#include "scheduler/stop_workers.h"

namespace ferry::scheduler {

InstancePool::InstancePool(std::vector<std::unique_ptr<runtime::ModelInstance>> instances,
                           InstancePoolOptions options, std::string name, ExecutionWatch* watch)
    : options_(options), name_(std::move(name)), watch_(watch), instances_(std::move(instances)) {
  for (auto& inst : instances_) workers_.emplace_back([this, i = inst.get()] { WorkerLoop(i); });
}

InstancePool::~InstancePool() { Stop(); }

Status InstancePool::Submit(Job job) {
  job.enqueue_ns = NowNanos();
  job.deadline_ns = job.timeout_us > 0 ? job.enqueue_ns + job.timeout_us * 1000 : 0;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Unavailable("model '" + name_ + "' is unloading");
    if (options_.max_queue_size > 0 && queue_.size() >= options_.max_queue_size)
      return Overloaded("model '" + name_ + "': the request queue is full (max_queue_size " +
                         std::to_string(options_.max_queue_size) + ")");
    queue_.push_back(std::move(job));
    // A busy worker takes the next job without sleeping, so waking one is only
    // needed (and a futex call only paid) when some worker is idle.
    if (idle_workers_ == 0) return Status::Ok();
  }
  cv_.notify_one();
  return Status::Ok();
}

void InstancePool::Stop() { StopWorkers(mu_, cv_, stopping_, workers_); }

size_t InstancePool::queue_depth() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void InstancePool::WorkerLoop(runtime::ModelInstance* instance) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      ++idle_workers_;
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_workers_;
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    JobReport report;
    report.queue_ns = NowNanos() - job.enqueue_ns;
    report.executed_batch_size = job.batch_size;
    if (Status unwanted = ExecutionWatch::Unwanted(job, NowNanos()); !unwanted.ok()) {
      job.inputs.clear();
      job.done(Status(unwanted.code(), "model '" + name_ + "': " + unwanted.message()), report);
      continue;
    }
    uint64_t ticket = watch_->Begin(instance, std::span<const Job>(&job, 1));
    auto result = instance->Execute(job.inputs, job.outputs, &report.timings);
    watch_->End(ticket);
    if (!result.ok() && result.status().code() == StatusCode::kCancelled) {
      Status why = ExecutionWatch::Unwanted(job, NowNanos());
      if (!why.ok()) result = Status(why.code(), "model '" + name_ + "': " + why.message());
    }
    job.inputs.clear();  // release request buffers before the callback sends the reply
    job.done(std::move(result), report);
  }
}

}  // namespace ferry::scheduler
