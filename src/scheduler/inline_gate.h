#pragma once

#include <atomic>
#include <cstdint>

namespace ferry::scheduler {

// Decides whether a model version's executions are short enough to run on the thread
// that submits them (an IO thread) instead of being handed to a worker thread. The
// decision is a pure function of the execution times observed so far: an exponentially
// weighted moving average (weight 1/8 per observation) of the wall time per row of the
// recent executions, multiplied by the rows of the job in question, must not exceed the
// threshold, and at least `min_observations` executions must have been seen (the first
// executions, usually the slowest, run on workers; the very first, which pays for lazy
// set-up, is counted but not averaged). One slow execution moves the
// average by an eighth of its excess, so an execution of 8x the threshold or more shuts
// the gate at once; fast executions open it again as the average decays.
// A threshold of 0 keeps the gate shut.
// Thread-safety: Allows and Observe may be called concurrently from any thread; they
// use relaxed atomics, so an observation racing with another may be lost (an average
// of timings needs no more).
class InlineGate {
 public:
  static constexpr uint32_t kDefaultMinObservations = 8;

  explicit InlineGate(uint64_t threshold_ns, uint32_t min_observations = kDefaultMinObservations);

  // Whether a job of `rows` rows may run on the submitting thread now.
  bool Allows(int64_t rows = 1) const;
  // Records one execution of `rows` rows that took `execution_ns` (wall time).
  void Observe(uint64_t execution_ns, int64_t rows = 1);

  // The current average per row, in nanoseconds (0 before the second observation).
  uint64_t average_ns_per_row() const { return average_.load(std::memory_order_relaxed); }
  uint64_t threshold_ns() const { return threshold_ns_; }

 private:
  const uint64_t threshold_ns_;
  const uint32_t min_observations_;
  std::atomic<uint64_t> average_{0};
  std::atomic<uint32_t> observations_{0};  // saturates at min_observations_
};

}  // namespace ferry::scheduler
