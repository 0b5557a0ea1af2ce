#include "scheduler/dynamic_batcher.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "scheduler/stop_workers.h"
#include "scheduler/tensor_batching.h"

namespace ferry::scheduler {

DynamicBatcher::DynamicBatcher(std::vector<std::unique_ptr<runtime::ModelInstance>> instances,
                               const inference::ModelConfig& config, const Clock* clock, ExecutionWatch* watch)
    : name_(config.name()),
      clock_(clock),
      watch_(watch),
      preserve_ordering_(config.dynamic_batching().preserve_ordering()),
      instances_(std::move(instances)),
      queue_(config) {
  for (auto& inst : instances_) workers_.emplace_back([this, i = inst.get()] { WorkerLoop(i); });
}

DynamicBatcher::~DynamicBatcher() { Stop(); }

Status DynamicBatcher::Submit(Job job) {
  std::optional<uint64_t> seq;
  if (preserve_ordering_) {
    // Every completion (success, error, expiry) passes through the sequencer.
    seq = order_.Next();
    job.done = [this, s = *seq, inner = std::move(job.done)](Result<std::vector<Tensor>> r, const JobReport& report) {
      order_.Complete(s, [inner, r = std::move(r), report]() mutable { inner(std::move(r), report); });
    };
  }
  Status refused;
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    refused = stopping_ ? Unavailable("model '" + name_ + "' is unloading") : queue_.Enqueue(std::move(job), clock_->NowNanos());
    // One idle worker waiting out a batch's delay needs no wake-up unless the arrival may
    // change its decision (a full batch, an earlier deadline): at high rates that saves a
    // futex wake and two context switches per request. Other cases re-decide as before.
    wake = refused.ok() && idle_workers_ > 0 &&
           (idle_workers_ != 1 || timed_idle_ != 1 || queue_.ArrivalNeedsDecision(timed_wake_at_));
  }
  if (!refused.ok()) {
    if (seq) order_.Complete(*seq, nullptr);  // never delivered: give up its turn
    return refused.code() == StatusCode::kUnavailable ? refused
                                                       : Status(refused.code(), "model '" + name_ + "': " + refused.message());
  }
  if (!wake) return Status::Ok();
  // Every idle worker re-decides: the new request may complete a batch or start a timer.
  cv_.notify_all();
  return Status::Ok();
}

void DynamicBatcher::Stop() { StopWorkers(mu_, cv_, stopping_, workers_); }

size_t DynamicBatcher::queue_depth() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void DynamicBatcher::WorkerLoop(runtime::ModelInstance* instance) {
  std::unique_lock lock(mu_);
  for (;;) {
    // Stopping drains: remaining requests run without waiting for their batch delay.
    BatchQueue::Decision d = queue_.Next(clock_->NowNanos(), /*flush=*/stopping_);
    if (!d.expired.empty() || !d.batch.empty()) {
      lock.unlock();
      for (Job& job : d.expired)
        job.done(DeadlineExceeded("model '" + name_ + "': the request timed out after " +
                                  std::to_string((clock_->NowNanos() - job.enqueue_ns) / 1000) +
                                  " us in the queue"),
                 JobReport{clock_->NowNanos() - job.enqueue_ns, {}, 0, false});
      if (!d.batch.empty()) Run(instance, std::move(d.batch));
      lock.lock();
      continue;
    }
    if (stopping_ && queue_.empty()) return;
    ++idle_workers_;
    if (d.wake_at) {
      uint64_t now = clock_->NowNanos();
      if (*d.wake_at > now) {
        ++timed_idle_;
        timed_wake_at_ = *d.wake_at;
        cv_.wait_for(lock, std::chrono::nanoseconds(*d.wake_at - now));
        --timed_idle_;
      }
    } else {
      cv_.wait(lock);
    }
    --idle_workers_;
  }
}

void DynamicBatcher::Run(runtime::ModelInstance* instance, std::vector<Job> batch) {
  const uint64_t start = clock_->NowNanos();
  // Requests whose client left or whose deadline passed while queued do not run. They
  // are answered and closed up in place, so a batch that is all wanted moves no job.
  {
    size_t kept = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      Job& j = batch[i];
      Status unwanted = ExecutionWatch::Unwanted(j, start);
      if (unwanted.ok()) {
        if (kept != i) batch[kept] = std::move(j);
        ++kept;
        continue;
      }
      j.inputs.clear();
      j.done(Status(unwanted.code(), "model '" + name_ + "': " + unwanted.message()),
             JobReport{start - j.enqueue_ns, {}, 0, false});
    }
    batch.resize(kept);
    if (batch.empty()) return;
  }
  // An explanation is not a prediction: it runs alone, before the predictions queued with it.
  std::vector<Job> explains;
  if (std::any_of(batch.begin(), batch.end(), [](const Job& j) { return j.kind == JobKind::kExplain; })) {
    std::vector<Job> infers;
    for (Job& j : batch) (j.kind == JobKind::kExplain ? explains : infers).push_back(std::move(j));
    batch = std::move(infers);
  }
  for (Job& j : explains) RunExplain(instance, std::move(j));
  if (batch.empty()) return;
  int64_t rows = 0;
  for (const Job& j : batch) rows += j.batch_size;
  runtime::ExecTimings timings;
  Result<std::vector<Tensor>> outputs = InvalidArgument("unset");
  const uint64_t ticket = watch_->Begin(instance, batch);
  if (batch.size() == 1) {
    outputs = instance->Execute(batch[0].inputs, batch[0].outputs, &timings);
  } else {
    std::vector<Tensor> inputs;
    inputs.reserve(batch[0].inputs.size());
    std::vector<const Tensor*> parts(batch.size());
    for (size_t i = 0; i < batch[0].inputs.size(); ++i) {
      for (size_t k = 0; k < batch.size(); ++k) parts[k] = &batch[k].inputs[i];
      inputs.push_back(ConcatBatch(parts));
    }
    uint64_t joined = clock_->NowNanos();
    outputs = instance->Execute(inputs, batch[0].outputs, &timings);
    timings.compute_input_ns += joined - start;  // joining is input preparation
  }
  watch_->End(ticket);
  if (outputs.ok()) {
    std::lock_guard lock(mu_);
    queue_.ObserveExecution(rows, timings.compute_input_ns + timings.compute_infer_ns + timings.compute_output_ns);
  }
  for (Job& j : batch) j.inputs.clear();  // release request buffers before replying

  std::vector<std::vector<Tensor>> per_job(batch.size());
  Status split_error;
  if (outputs.ok() && batch.size() > 1) {
    std::vector<int64_t> sizes(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) sizes[i] = batch[i].batch_size;
    for (auto& pieces : per_job) pieces.reserve(outputs->size());
    for (Tensor& out : *outputs) {
      auto pieces = SplitBatch(std::move(out), sizes);  // the pieces keep `out` alive
      if (!pieces.ok()) {
        split_error = pieces.status();
        break;
      }
      for (size_t i = 0; i < batch.size(); ++i) per_job[i].push_back(std::move((*pieces)[i]));
    }
  } else if (outputs.ok()) {
    per_job[0] = std::move(outputs).value();
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    JobReport report{start - batch[i].enqueue_ns, timings, rows, i == 0};
    if (!outputs.ok() && outputs.status().code() == StatusCode::kCancelled) {
      // Stopped by the watch: each request learns its own reason.
      Status why = ExecutionWatch::Unwanted(batch[i], clock_->NowNanos());
      batch[i].done(why.ok() ? outputs.status() : Status(why.code(), "model '" + name_ + "': " + why.message()), report);
    } else if (!outputs.ok()) batch[i].done(outputs.status(), report);
    else if (!split_error.ok()) batch[i].done(split_error, report);
    else batch[i].done(std::move(per_job[i]), report);
  }
}

void DynamicBatcher::RunExplain(runtime::ModelInstance* instance, Job job) {
  const uint64_t start = clock_->NowNanos();
  JobReport report{start - job.enqueue_ns, {}, job.batch_size, true};
  const uint64_t ticket = watch_->Begin(instance, std::span<const Job>(&job, 1));
  Result<std::vector<Tensor>> result = instance->Explain(job.inputs, &report.timings);
  watch_->End(ticket);
  if (!result.ok() && result.status().code() == StatusCode::kCancelled) {
    Status why = ExecutionWatch::Unwanted(job, clock_->NowNanos());
    if (!why.ok()) result = Status(why.code(), "model '" + name_ + "': " + why.message());
  }
  job.inputs.clear();
  job.done(std::move(result), report);
}

}  // namespace ferry::scheduler
