#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "core/clock.h"
#include "engine/latency_histogram.h"
#include "engine/spec.h"

namespace ferry::engine {

// What the autoscaler recommends for one revision.
struct ScaleDecision {
  int desired = 0;
  bool panic = false;   // the panic window is in charge (no scale-down)
  std::string reason;   // one line for status and the scale-event log
};

// Decides how many replicas a revision should run from the requests it had in flight,
// in the manner of Knative's KPA: desired = ceil(average in-flight / target) over a
// stable window, or over a short panic window when a burst needs at least
// panic_threshold x the ready replicas (then no scale-down until a whole stable window
// has passed without panic). A higher recommendation is applied once it has held for
// scale_up_delay, a lower one once it has held for scale_down_delay. With min 0 the
// last replica goes after scale_to_zero_after without any request; at zero, the first
// request asks for a replica at once (no delay applies to a cold start).
//
// With a latency objective (target_p95 > 0), the p95 of the request latencies observed
// over latency_window also counts: above the target, one replica more, once every
// replica is ready and the previous latency step is a whole window old (so the window
// reflects it); above kLatencyHeadroom x the target, no scale-down. The p95 is used only
// with at least kLatencyMinRequests requests in the window.
//
// A pure controller: the only inputs are Observe's samples and the injected clock, and
// Decide does no I/O, so tests drive it with a ManualClock.
// Thread-safety: not thread-safe; one control loop owns it.
class Autoscaler {
 public:
  // clock: not owned, must outlive the autoscaler.
  Autoscaler(AutoscalingPolicy policy, ReplicaBounds bounds, const Clock* clock);

  // Records a sample taken now: requests in flight at the revision (at the replicas and
  // waiting at the gateway) and how many requests arrived since the previous sample.
  // The controller averages samples, so call it at a steady period (the engine: 100 ms).
  // `latency`: the latencies of the requests answered since the previous sample (the
  // difference of two LatencyHistogram reads); ignored without a latency objective.
  void Observe(double in_flight, uint64_t arrivals, const LatencyHistogram::Counts* latency = nullptr);

  static constexpr double kLatencyHeadroom = 0.8;
  static constexpr uint64_t kLatencyMinRequests = 20;

  // The replica count to run, given the count the revision runs now (`current`, the
  // last decision) and how many of those are ready.
  ScaleDecision Decide(int current, int ready);

 private:
  struct Sample {
    uint64_t t;
    double in_flight;
  };
  struct Recommendation {
    uint64_t t;
    int replicas;
  };

  struct LatencySample {
    uint64_t t;
    LatencyHistogram::Counts counts;
  };
  double Average(uint64_t now, uint64_t window_ns) const;
  // p95 in seconds of the latency window; nullopt with too few requests.
  std::optional<double> WindowP95() const;
  int Clamp(int n) const;

  const AutoscalingPolicy policy_;
  const ReplicaBounds bounds_;
  const Clock* clock_;
  const uint64_t created_;
  std::deque<Sample> samples_;       // newest last, at most one stable window old
  std::deque<Recommendation> recs_;  // newest last, at most max(delays) old
  uint64_t last_activity_;           // last sample with a request in flight or arrived
  bool last_sample_active_ = false;  // the newest sample had a request
  uint64_t panic_until_ = 0;         // panic mode lasts until this time (0: not in panic)
  int panic_peak_ = 0;               // highest recommendation since panic began
  std::deque<LatencySample> latency_;  // newest last, at most latency_window old
  LatencyHistogram::Counts latency_sum_{};  // sum of latency_
  uint64_t last_latency_step_ = 0;     // when the latency objective last added a replica
};

}  // namespace ferry::engine
