#include "core/worker_pool.h"

#include <thread>

namespace ferry {

WorkerPool::WorkerPool(WorkerPoolOptions options) : options_(options) {}

WorkerPool::~WorkerPool() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  work_cv_.notify_all();
  exit_cv_.wait(lock, [this] { return threads_ == 0; });
}

WorkerPool* WorkerPool::Shared() {
  static WorkerPool* pool = new WorkerPool();  // never destroyed: tasks may run during exit
  return pool;
}

void WorkerPool::Run(std::function<void()> task) {
  bool spawn = false;
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
    // Every queued task needs a thread of its own: an idle one that has not claimed a
    // task yet, or a new one.
    if (tasks_.size() > idle_ && (options_.max_threads == 0 || threads_ < options_.max_threads)) {
      ++threads_;
      spawn = true;
    }
  }
  if (spawn) {
    // Detached: a thread's last act is to leave Loop, after which it touches nothing of
    // the pool; the destructor waits for threads_ to reach zero instead of joining.
    std::thread([this] { Loop(); }).detach();
  } else {
    work_cv_.notify_one();
  }
}

size_t WorkerPool::threads() const {
  std::lock_guard lock(mu_);
  return threads_;
}

void WorkerPool::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (tasks_.empty()) {
      if (stopping_) break;
      ++idle_;
      bool woken = true;
      if (options_.idle_timeout.count() > 0)
        woken = work_cv_.wait_for(lock, options_.idle_timeout, [this] { return stopping_ || !tasks_.empty(); });
      else
        work_cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      --idle_;
      if (!woken) break;  // idle for the whole timeout
      continue;
    }
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    task = nullptr;  // destroy what the task captured outside the lock
    lock.lock();
  }
  --threads_;
  exit_cv_.notify_all();
}

}  // namespace ferry
