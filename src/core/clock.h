#pragma once

#include <chrono>
#include <cstdint>

namespace ferry {

// Monotonic nanoseconds for latency measurement.
inline uint64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Wall-clock milliseconds since the Unix epoch (for "last inference" timestamps).
inline uint64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

// A source of monotonic time, injected where tests need to control it.
// Thread-safety: NowNanos is thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t NowNanos() const = 0;
};

// The steady clock.
class SystemClock final : public Clock {
 public:
  uint64_t NowNanos() const override { return ferry::NowNanos(); }
  static const SystemClock* Get() {
    static const SystemClock clock;
    return &clock;
  }
};

}  // namespace ferry
