#include "engine/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ferry::engine {
namespace {

uint64_t Nanos(Millis m) { return static_cast<uint64_t>(m.count()) * 1'000'000; }

}  // namespace

Autoscaler::Autoscaler(AutoscalingPolicy policy, ReplicaBounds bounds, const Clock* clock)
    : policy_(policy), bounds_(bounds), clock_(clock), created_(clock->NowNanos()), last_activity_(created_) {}

void Autoscaler::Observe(double in_flight, uint64_t arrivals, const LatencyHistogram::Counts* latency) {
  const uint64_t now = clock_->NowNanos();
  if (latency && policy_.target_p95.count() > 0) {
    latency_.push_back({now, *latency});
    for (int i = 0; i < LatencyHistogram::kBuckets; ++i) latency_sum_[i] += (*latency)[i];
    const uint64_t lw = Nanos(policy_.latency_window);
    while (!latency_.empty() && now - latency_.front().t > lw) {
      for (int i = 0; i < LatencyHistogram::kBuckets; ++i) latency_sum_[i] -= latency_.front().counts[i];
      latency_.pop_front();
    }
  }
  samples_.push_back({now, in_flight});
  last_sample_active_ = in_flight > 0 || arrivals > 0;
  if (last_sample_active_) last_activity_ = now;
  const uint64_t keep = Nanos(policy_.stable_window);
  while (!samples_.empty() && now - samples_.front().t > keep) samples_.pop_front();
}

double Autoscaler::Average(uint64_t now, uint64_t window_ns) const {
  double sum = 0;
  size_t n = 0;
  for (auto it = samples_.rbegin(); it != samples_.rend() && now - it->t <= window_ns; ++it) {
    sum += it->in_flight;
    ++n;
  }
  return n ? sum / static_cast<double>(n) : 0.0;
}

std::optional<double> Autoscaler::WindowP95() const {
  uint64_t n = 0;
  for (uint64_t c : latency_sum_) n += c;
  if (n < kLatencyMinRequests) return std::nullopt;
  return LatencyHistogram::Quantile(latency_sum_, 0.95);
}

int Autoscaler::Clamp(int n) const { return std::clamp(n, std::max(bounds_.min, 1), bounds_.max); }

ScaleDecision Autoscaler::Decide(int current, int ready) {
  const uint64_t now = clock_->NowNanos();
  ScaleDecision d;
  d.desired = current;
  if (!policy_.enabled) {
    d.desired = std::clamp(current, bounds_.min, bounds_.max);
    d.reason = "autoscaling disabled";
    return d;
  }
  const double target = policy_.target_in_flight;
  const double stable_avg = Average(now, Nanos(policy_.stable_window));
  const double panic_avg = Average(now, Nanos(policy_.panic_window));
  const int want_stable = static_cast<int>(std::ceil(stable_avg / target - 1e-9));
  const int want_panic = static_cast<int>(std::ceil(panic_avg / target - 1e-9));

  // Cold start: a request is waiting and nothing runs. No delay, or it would wait.
  if (current == 0) {
    if (last_sample_active_ || bounds_.min > 0) {
      d.desired = Clamp(std::max(want_panic, 1));
      d.reason = bounds_.min > 0 ? "below min" : "cold start: a request arrived at zero replicas";
      return d;
    }
    d.desired = 0;
    d.reason = "idle at zero";
    return d;
  }

  // Panic mode (Knative): a burst that needs threshold x the ready replicas.
  const bool burst = want_panic > 0 && static_cast<double>(want_panic) >= policy_.panic_threshold * std::max(ready, 1);
  if (burst) {
    if (panic_until_ == 0) panic_peak_ = current;
    panic_until_ = now + Nanos(policy_.stable_window);
  } else if (panic_until_ != 0 && now >= panic_until_) {
    panic_until_ = 0;
    panic_peak_ = 0;
  }
  int rec;
  if (panic_until_ != 0) {
    panic_peak_ = std::max({panic_peak_, want_panic, current});
    rec = Clamp(panic_peak_);
    d.panic = true;
  } else {
    rec = Clamp(want_stable);
  }

  recs_.push_back({now, rec});
  const uint64_t keep = std::max(Nanos(policy_.scale_up_delay), Nanos(policy_.scale_down_delay));
  while (recs_.size() > 1 && now - recs_.front().t > keep) recs_.pop_front();

  // A recommendation counts once it has held for the whole delay: the lowest one of the
  // up-delay window for scaling up, the highest one of the down-delay window for down.
  auto held_for = [&](Millis delay, bool up) {
    const uint64_t w = Nanos(delay);
    int v = rec;
    for (auto it = recs_.rbegin(); it != recs_.rend() && now - it->t <= w; ++it)
      v = up ? std::min(v, it->replicas) : std::max(v, it->replicas);
    const bool covered = now - created_ >= w;
    return std::make_pair(v, covered);
  };
  auto [up, up_ok] = held_for(policy_.scale_up_delay, true);
  auto [down, down_ok] = held_for(policy_.scale_down_delay, false);
  if (d.panic) {
    // The panic window is itself the burst detector: scaling up waits for nothing.
    up = rec;
    up_ok = true;
  }
  char why[128];
  std::snprintf(why, sizeof why, "%saverage in flight %.2f, target %.2f per replica", d.panic ? "panic: " : "",
                d.panic ? panic_avg : stable_avg, target);
  if (up > current && up_ok) {
    d.desired = up;
    d.reason = why;
  } else if (down < current && down_ok && !d.panic) {
    d.desired = down;
    d.reason = why;
  }

  // The latency objective: a replica more while the p95 is over the target; no step down
  // while it is near the target.
  if (policy_.target_p95.count() > 0) {
    const std::optional<double> p95 = WindowP95();
    const double target_s = static_cast<double>(policy_.target_p95.count()) / 1000.0;
    if (p95 && *p95 > target_s) {
      const bool settled = ready >= current && (last_latency_step_ == 0 ||
                                                now - last_latency_step_ >= Nanos(policy_.latency_window));
      if (d.desired <= current && settled && current < bounds_.max) {
        d.desired = current + 1;
        last_latency_step_ = now;
        char why[128];
        std::snprintf(why, sizeof why, "latency: p95 %.1f ms over the target %.1f ms", *p95 * 1000, target_s * 1000);
        d.reason = why;
      }
    }
    if (p95 && *p95 > kLatencyHeadroom * target_s && d.desired < current) d.desired = current;
  }

  // Scale to zero: the only step below min(1), after a whole idle period.
  if (bounds_.min == 0 && d.desired <= 1 && !d.panic &&
      now - last_activity_ >= Nanos(policy_.scale_to_zero_after)) {
    d.desired = 0;
    d.reason = "idle for scale_to_zero_after";
  }
  return d;
}

}  // namespace ferry::engine
