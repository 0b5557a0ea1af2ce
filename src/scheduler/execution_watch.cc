#include "scheduler/execution_watch.h"

namespace ferry::scheduler {

ExecutionWatch::ExecutionWatch(const Clock* clock, std::chrono::milliseconds period)
    : clock_(clock), period_(period), thread_([this] { Loop(); }) {}

ExecutionWatch::~ExecutionWatch() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status ExecutionWatch::Unwanted(const Job& job, uint64_t now) {
  if (job.cancelled && job.cancelled()) return Cancelled("the client went away before the request finished");
  if (job.deadline_ns != 0 && now >= job.deadline_ns)
    return DeadlineExceeded("the request's timeout passed before it finished (" +
                            std::to_string((now - job.enqueue_ns) / 1000) + " us after it was queued)");
  return Status::Ok();
}

ExecutionWatch* ExecutionWatch::Default() {
  // Never destroyed: schedulers may still End executions during static destruction.
  static ExecutionWatch* watch = new ExecutionWatch(SystemClock::Get());
  return watch;
}

uint64_t ExecutionWatch::Begin(runtime::ModelInstance* instance, std::span<const Job> jobs) {
  for (const Job& j : jobs)
    if (j.deadline_ns == 0 && !j.cancelled) return 0;  // one job always wanted: nothing to stop
  Running r{instance, {}, false};
  r.jobs.reserve(jobs.size());
  for (const Job& j : jobs) r.jobs.emplace_back(j.deadline_ns, j.cancelled ? &j.cancelled : nullptr);
  // No wake-up here: the watch polls on its own period, so registering costs the
  // request path one uncontended lock, not a futex call and a context switch.
  std::lock_guard lock(mu_);
  uint64_t ticket = next_ticket_++;
  running_.emplace(ticket, std::move(r));
  return ticket;
}

void ExecutionWatch::End(uint64_t ticket) {
  if (ticket == 0) return;
  std::lock_guard lock(mu_);
  running_.erase(ticket);
}

void ExecutionWatch::CheckOnce() {
  std::lock_guard lock(mu_);
  const uint64_t now = clock_->NowNanos();
  for (auto& [ticket, r] : running_) {
    if (r.terminated) continue;
    bool any_wanted = false;
    for (const auto& [deadline, probe] : r.jobs) {
      bool gone = (deadline != 0 && now >= deadline) || (probe != nullptr && (*probe)());
      if (!gone) {
        any_wanted = true;
        break;
      }
    }
    if (!any_wanted) {
      // Under mu_, so End (which the worker calls after Execute) cannot pass us: the
      // execution is still the one registered.
      r.instance->Terminate();
      r.terminated = true;
    }
  }
}

void ExecutionWatch::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, period_);
    if (stopping_ || running_.empty()) continue;
    lock.unlock();
    CheckOnce();
    lock.lock();
  }
}

}  // namespace ferry::scheduler
