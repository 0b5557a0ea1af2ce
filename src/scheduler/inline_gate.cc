#include "scheduler/inline_gate.h"

#include <algorithm>

namespace ferry::scheduler {

InlineGate::InlineGate(uint64_t threshold_ns, uint32_t min_observations)
    : threshold_ns_(threshold_ns), min_observations_(std::max<uint32_t>(min_observations, 1)) {}

bool InlineGate::Allows(int64_t rows) const {
  if (threshold_ns_ == 0 || observations_.load(std::memory_order_relaxed) < min_observations_) return false;
  const uint64_t per_row = average_.load(std::memory_order_relaxed);
  const uint64_t n = static_cast<uint64_t>(std::max<int64_t>(rows, 1));
  // per_row * n <= threshold, without overflowing.
  return per_row <= threshold_ns_ / n;
}

void InlineGate::Observe(uint64_t execution_ns, int64_t rows) {
  const uint64_t per_row = execution_ns / static_cast<uint64_t>(std::max<int64_t>(rows, 1));
  const uint32_t seen = observations_.load(std::memory_order_relaxed);
  if (seen == 0) {
    // A version's first execution pays for lazy set-up (ONNX Runtime allocates its
    // arenas): ms where later ones take us. Averaged in, it would keep the gate shut for
    // dozens of executions; it only counts towards min_observations.
  } else if (seen == 1) {
    average_.store(per_row, std::memory_order_relaxed);
  } else {
    const int64_t old = static_cast<int64_t>(average_.load(std::memory_order_relaxed));
    const int64_t next = old + (static_cast<int64_t>(per_row) - old) / 8;
    average_.store(static_cast<uint64_t>(std::max<int64_t>(next, 0)), std::memory_order_relaxed);
  }
  if (seen < min_observations_) observations_.store(seen + 1, std::memory_order_relaxed);
}

}  // namespace ferry::scheduler
