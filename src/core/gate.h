#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace ferry {

// Counts work in flight and, once closed, refuses new work and lets one thread wait
// until the in-flight work has drained (as Seastar's gate).
// Thread-safety: all methods are thread-safe.
class Gate {
 public:
  // Enters the gate; false when closed.
  bool TryEnter() {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    ++count_;
    return true;
  }
  void Leave() {
    std::lock_guard lock(mu_);
    if (--count_ == 0 && closed_) cv_.notify_all();
  }
  // Closes the gate and blocks until every holder has left.
  void CloseAndDrain() {
    std::unique_lock lock(mu_);
    closed_ = true;
    cv_.wait(lock, [this] { return count_ == 0; });
  }
  // Closes the gate and waits up to `timeout` for the holders to leave; true when
  // every one has.
  bool CloseAndDrainFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    closed_ = true;
    return cv_.wait_for(lock, timeout, [this] { return count_ == 0; });
  }
  bool closed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t count_ = 0;
  bool closed_ = false;
};

}  // namespace ferry
