#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "repository/model_config.pb.h"
#include "scheduler/scheduler.h"

namespace ferry::scheduler {

// The dynamic batcher's queue and batch-forming policy, with no threads and no clock:
// every call takes `now`, so tests drive time by hand.
//
// Policy, per Triton's dynamic_batching settings:
// - priority levels 1..N (1 highest), FIFO within a level; each level has its queue
//   policy (max_queue_size, default timeout, REJECT or DELAY, timeout override);
// - a batch starts at the oldest request of the highest non-empty level and takes, in
//   priority then arrival order, every request with the same non-batch shapes while the
//   rows fit in max_batch_size;
// - it is dispatched at once when it reaches max_batch_size or a preferred size the
//   queue cannot grow past, or when its oldest request has waited
//   max_queue_delay_microseconds; otherwise the caller waits until that moment;
// - an expired request is failed (REJECT) or moved behind every other request (DELAY).
//
// Latency-target mode (ferry's own; config parameter `latency_target_microseconds`)
// replaces the fixed delay: from the measured arrival rate and the measured execution
// time per batch size, a batch waits for one more request only while (a) requests arrive
// faster than the batch would run, (b) a bigger batch costs less per row and (c) the
// oldest request can still finish within the target after that request's expected
// arrival; and it stops waiting once no request came within twice the usual gap (the
// arrivals stopped: a closed loop whose clients all wait in this batch). So light load
// runs at once, heavy load fills batches.
// Thread-safety: none; the DynamicBatcher guards it with its mutex.
class BatchQueue {
 public:
  explicit BatchQueue(const inference::ModelConfig& config);

  // Queues a job (its enqueue_ns set to `now`). OVERLOADED when its level is full;
  // INVALID_ARGUMENT for a priority outside the model's levels.
  Status Enqueue(Job job, uint64_t now);

  struct Decision {
    std::vector<Job> batch;             // run these now, in this order
    std::vector<Job> expired;           // fail these with DEADLINE_EXCEEDED
    std::optional<uint64_t> wake_at;    // nothing to run: decide again then (or on arrival)
  };
  // `flush` (shutdown): dispatch whatever can be batched without waiting for a delay.
  Decision Next(uint64_t now, bool flush = false);

  // Feeds the latency-target estimates: one execution of `rows` rows took `ns`.
  void ObserveExecution(int64_t rows, uint64_t ns);

  // After an Enqueue, for a worker that planned to decide again at `wake_at` (it waits
  // for a batch's delay): whether that arrival may change the decision before then, so
  // the worker must be woken now. True when the queued rows could fill a batch, when the
  // new request's deadline falls before `wake_at`, and always in latency-target mode
  // (its decision follows the arrival rate). Otherwise the worker's timer suffices, and
  // a busy queue costs no wake-up per request.
  bool ArrivalNeedsDecision(uint64_t wake_at) const;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Removes every queued job (shutdown).
  std::vector<Job> TakeAll();

 private:
  struct Pending {
    Job job;
    uint64_t deadline = 0;  // 0: none
    bool delay_on_timeout = false;
  };
  struct LevelPolicy {
    uint64_t max_size = 0;
    uint64_t default_timeout_us = 0;
    bool delay_on_timeout = false;
    bool allow_override = false;
  };
  // Requests batch together only when their inputs (names, order, non-batch dimensions)
  // and requested outputs are equal. Compared directly: nothing is built per request.
  static bool Compatible(const Job& a, const Job& b);
  struct Pick {
    size_t queue;  // 0..levels_.size()-1: a level; levels_.size(): delayed_
    size_t index;
    int64_t rows;
  };

  const int64_t max_batch_;
  const uint64_t max_delay_ns_;
  std::vector<int64_t> preferred_;       // ascending
  uint32_t default_level_ = 1;
  std::vector<LevelPolicy> policies_;    // index: level - 1
  std::vector<std::deque<Pending>> levels_;
  std::deque<Pending> delayed_;          // timed out with DELAY: served last
  size_t size_ = 0;
  int64_t rows_ = 0;             // rows of every queued job (delayed ones included)
  int64_t full_rows_ = 0;        // rows at which a batch may be full (max, or the largest preferred size)
  uint64_t last_deadline_ = 0;   // the newest job's queue deadline (0: none)
  std::vector<Pick> picks_;      // Next's scratch, kept to reuse its capacity

  // Latency-target mode.
  bool ShouldWaitForMore(int64_t rows, uint64_t oldest, uint64_t now, uint64_t* wake_at) const;
  // Measured; else extrapolated along the two largest smaller measurements; else the one
  // smaller measurement (optimistic, so the batcher tries bigger batches); else 0.
  double ExecNs(int64_t rows) const;
  uint64_t latency_target_ns_ = 0;    // 0: fixed-delay mode
  double ns_per_arrival_row_ = 0;     // EWMA of inter-arrival time per row; 0: unknown
  uint64_t last_arrival_ = 0;
  bool have_arrival_ = false;
  std::vector<double> exec_ns_;       // EWMA per batch size; 0: not measured
};

}  // namespace ferry::scheduler
