#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>

namespace ferry::engine {

// Request latencies of one revision, as seen at the gateway, in fixed log-spaced buckets
// (50 µs to ~190 s, a factor of 1.1 apart; a quantile is interpolated within its bucket,
// so it is off by less than 10 %).
// The gateway's threads Record; the control loop reads the cumulative counts once a
// tick and hands the difference to the autoscaler (its latency objective).
// Thread-safety: Record and Read are thread-safe (relaxed atomics; a Read taken while
// requests finish may miss the newest, which the next Read sees).
class LatencyHistogram {
 public:
  static constexpr int kBuckets = 160;
  using Counts = std::array<uint64_t, kBuckets>;

  void Record(double seconds) { counts_[Bucket(seconds)].fetch_add(1, std::memory_order_relaxed); }
  Counts Read() const {
    Counts c;
    for (int i = 0; i < kBuckets; ++i) c[i] = counts_[i].load(std::memory_order_relaxed);
    return c;
  }

  // The bucket of a latency: 0 holds everything up to the first edge, the last one
  // everything above the last edge.
  static int Bucket(double seconds);
  // Upper edge of bucket i, in seconds (the last bucket holds everything above its lower
  // edge too; a quantile there is reported as its upper edge).
  static double UpperEdge(int i);
  // The q-quantile (0 < q <= 1) of counts, interpolated linearly by rank within the
  // bucket that holds it (bucket 0 from 0); nullopt without any count.
  static std::optional<double> Quantile(const Counts& counts, double q);

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
};

}  // namespace ferry::engine
