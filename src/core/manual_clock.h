#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "core/clock.h"

namespace ferry {

// A clock that moves only when a test advances it.
// Thread-safety: all methods are thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(uint64_t start_nanos = 1'000'000'000) : now_(start_nanos) {}
  uint64_t NowNanos() const override { return now_.load(); }
  void Advance(std::chrono::nanoseconds d) { now_ += static_cast<uint64_t>(d.count()); }

 private:
  std::atomic<uint64_t> now_;
};

}  // namespace ferry
