#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "protocol/model_statistics.h"

namespace ferry::server {

// The snapshot's value types live with their encoders (protocol/model_statistics.h).
using protocol::BatchStatistics;
using protocol::Duration;
using protocol::StatisticsSnapshot;

// Cumulative per-version statistics since the version was loaded.
// Thread-safety: Record* are thread-safe and lock-free except the per-batch-size
// table (a short mutex); Snapshot may run concurrently with them.
class VersionStatistics {
 public:
  struct Execution {
    uint64_t batch_size, queue_ns, compute_input_ns, compute_infer_ns, compute_output_ns, request_ns;
    uint64_t wall_ms;
    // The execution this request ran in: counted once (by one request of a batch),
    // in execution_count and in batch_stats under its total batch size.
    bool counts_execution = true;
    uint64_t executed_batch_size = 0;  // 0: the request's own batch_size
  };
  void RecordSuccess(const Execution& e);
  // A request that failed after reaching the model (validation or runtime error).
  void RecordFailure(uint64_t request_ns, uint64_t wall_ms);
  // Response cache: a hit answers the request (it counts as a success and a queue entry
  // of zero, no execution, as Triton counts); `lookup_ns` is the lookup time.
  void RecordCacheHit(uint64_t request_ns, uint64_t lookup_ns, uint64_t wall_ms);
  void RecordCacheMiss(uint64_t lookup_ns);

  StatisticsSnapshot Snapshot(const std::string& name, const std::string& version) const;

 private:
  struct AtomicDuration {
    std::atomic<uint64_t> count{0}, ns{0};
    void Add(uint64_t n) {
      count.fetch_add(1, std::memory_order_relaxed);
      ns.fetch_add(n, std::memory_order_relaxed);
    }
    Duration Load() const { return {count.load(std::memory_order_relaxed), ns.load(std::memory_order_relaxed)}; }
  };
  std::atomic<uint64_t> last_inference_ms_{0}, inference_count_{0}, execution_count_{0};
  AtomicDuration success_, fail_, queue_, compute_input_, compute_infer_, compute_output_, cache_hit_, cache_miss_;
  mutable std::mutex batch_mu_;
  std::map<uint64_t, BatchStatistics> batches_;  // guarded by batch_mu_
};

}  // namespace ferry::server
