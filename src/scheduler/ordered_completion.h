#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace ferry::scheduler {

// Delivers completions in sequence order (preserve_ordering): completion n runs only
// after completions 0..n-1, whichever thread finishes first. One thread at a time
// delivers, outside the lock, so callbacks keep their order across threads.
// Thread-safety: all methods are thread-safe.
class OrderedCompletion {
 public:
  uint64_t Next() {
    std::lock_guard lock(mu_);
    return issued_++;
  }

  // Delivers `fn` once every earlier sequence number has been delivered (or skipped).
  // An empty `fn` skips the number (a submission that was refused).
  void Complete(uint64_t seq, std::function<void()> fn) {
    std::unique_lock lock(mu_);
    ready_[seq] = std::move(fn);
    if (delivering_) return;  // the thread that is delivering will pick it up
    delivering_ = true;
    for (auto it = ready_.find(next_); it != ready_.end(); it = ready_.find(next_)) {
      std::function<void()> f = std::move(it->second);
      ready_.erase(it);
      ++next_;
      lock.unlock();
      if (f) f();
      lock.lock();
    }
    delivering_ = false;
  }

 private:
  std::mutex mu_;
  uint64_t issued_ = 0;                              // guarded by mu_
  uint64_t next_ = 0;                                // guarded by mu_
  std::map<uint64_t, std::function<void()>> ready_;  // guarded by mu_
  bool delivering_ = false;                          // guarded by mu_
};

}  // namespace ferry::scheduler
