#include "engine/concurrency_limiter.h"

#include <algorithm>

namespace ferry::engine {

ConcurrencyLimiter::ConcurrencyLimiter(int capacity, int max_queue) : capacity_(capacity), max_queue_(max_queue) {}

ConcurrencyLimiter::Outcome ConcurrencyLimiter::Acquire(const std::shared_ptr<Waiter>& waiter) {
  std::lock_guard lock(mu_);
  // Nobody overtakes the queue: a free slot with waiters is already theirs.
  if (queue_.empty() && active_ < capacity_) {
    ++active_;
    return Outcome::kAcquired;
  }
  if (static_cast<int>(queue_.size()) >= max_queue_) return Outcome::kQueueFull;
  queue_.push_back({waiter.get(), waiter});
  return Outcome::kQueued;
}

bool ConcurrencyLimiter::Cancel(const Waiter* waiter) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Entry& e) { return e.id == waiter; });
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

void ConcurrencyLimiter::Release() {
  std::deque<std::shared_ptr<Waiter>> granted;
  {
    std::lock_guard lock(mu_);
    if (active_ > 0) --active_;
    granted = TakeGrantable();
  }
  GrantAll(std::move(granted));
}

void ConcurrencyLimiter::Configure(int capacity, int max_queue) {
  std::deque<std::shared_ptr<Waiter>> granted;
  {
    std::lock_guard lock(mu_);
    capacity_ = capacity;
    max_queue_ = max_queue;
    granted = TakeGrantable();
  }
  GrantAll(std::move(granted));
}

std::deque<std::shared_ptr<ConcurrencyLimiter::Waiter>> ConcurrencyLimiter::TakeGrantable() {
  std::deque<std::shared_ptr<Waiter>> granted;
  while (!queue_.empty() && active_ < capacity_) {
    std::shared_ptr<Waiter> w = queue_.front().waiter.lock();
    queue_.pop_front();
    if (!w) continue;  // its owner is gone: no slot for it
    ++active_;
    granted.push_back(std::move(w));
  }
  return granted;
}

void ConcurrencyLimiter::GrantAll(std::deque<std::shared_ptr<Waiter>> granted) {
  // Outside the lock: a Grant() may post to a loop, wake a queue, or Release at once.
  for (auto& w : granted) w->Grant();
}

int ConcurrencyLimiter::active() const {
  std::lock_guard lock(mu_);
  return active_;
}

int ConcurrencyLimiter::queued() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(queue_.size());
}

}  // namespace ferry::engine
