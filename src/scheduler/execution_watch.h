#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <mutex>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "runtime/runtime.h"
#include "scheduler/scheduler.h"

namespace ferry::scheduler {

// Watches executions in progress and stops one (ModelInstance::Terminate) once no
// request in it is still wanted: every one is past its deadline or its client has gone.
// Deadlines thus hold during execution, not only in the queue.
// Thread-safety: Begin/End are thread-safe; one background thread wakes every `period`
// and checks the registered executions (registering never wakes it).
class ExecutionWatch {
 public:
  ExecutionWatch(const Clock* clock, std::chrono::milliseconds period = std::chrono::milliseconds(5));
  ~ExecutionWatch();

  // Registers `instance` as running `jobs`. Returns a ticket for End; 0 (nothing to
  // watch) when no job has a deadline or a cancellation probe.
  // The watch keeps pointers to the jobs' probes (no copies on the request path):
  // REQUIRES: `jobs` stay alive and unchanged until End(ticket) returns.
  uint64_t Begin(runtime::ModelInstance* instance, std::span<const Job> jobs);
  // After End returns, Terminate is not called for this execution. Ticket 0 is a no-op.
  void End(uint64_t ticket);

  // Whether a job is no longer wanted at `now` (deadline passed or client gone), and
  // the error to give it.
  static Status Unwanted(const Job& job, uint64_t now);

  // One scan (the background thread's step; exposed for tests).
  void CheckOnce();

  // The process-wide watch on the system clock that schedulers use by default.
  static ExecutionWatch* Default();

 private:
  struct Running {
    runtime::ModelInstance* instance;
    std::vector<std::pair<uint64_t, const std::function<bool()>*>> jobs;  // deadline, probe (the job's own)
    bool terminated = false;
  };
  void Loop();

  const Clock* clock_;
  const std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Running> running_;  // guarded by mu_
  uint64_t next_ticket_ = 1;             // guarded by mu_
  bool stopping_ = false;                // guarded by mu_
  std::thread thread_;
};

}  // namespace ferry::scheduler
