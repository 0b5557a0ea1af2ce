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

}  // namespace ferry
