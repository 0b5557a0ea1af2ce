#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace ferry {

struct WorkerPoolOptions {
  // At most this many threads; 0: no limit. A task that finds every thread busy at the
  // limit waits for one.
  size_t max_threads = 0;
  // A thread with nothing to do for this long exits; zero or negative: never.
  std::chrono::milliseconds idle_timeout{10000};
};

// Threads that start when work arrives and no thread is free, and exit after a while
// without work. The shared pool runs the executions of every model whose instances do
// not need a thread of their own (scheduler::InstancePool); one-thread pools run the
// frontends' repository control requests, so an idle server holds no execution thread whatever
// the number of models, while a busy one has one per execution in progress (never a
// queue behind a busy thread: a task gets an idle thread or a new one).
// Thread-safety: Run and threads() may be called from any thread, including from a task.
class WorkerPool {
 public:
  explicit WorkerPool(WorkerPoolOptions options = {});
  // Waits for queued and running tasks to finish and their threads to exit. REQUIRES:
  // not called from one of this pool's tasks.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // The process-wide pool (no thread limit, 10 s idle timeout); never destroyed.
  static WorkerPool* Shared();

  // Runs `task` on a pool thread, never on the caller.
  void Run(std::function<void()> task);

  // Threads alive now (running a task or waiting for one).
  size_t threads() const;

 private:
  void Loop();

  const WorkerPoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // a task arrived, or stopping
  std::condition_variable exit_cv_;  // a thread exited (for the destructor)
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  size_t idle_ = 0;                          // threads waiting on work_cv_; guarded by mu_
  size_t threads_ = 0;                       // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
};

}  // namespace ferry
