#include "engine/autoscaler.h"

#include <gtest/gtest.h>

#include "core/manual_clock.h"

namespace ferry::engine {
namespace {

using namespace std::chrono_literals;

class AutoscalerTest : public ::testing::Test {
 protected:
  AutoscalingPolicy Policy() {
    AutoscalingPolicy p;
    p.target_in_flight = 4;
    p.stable_window = 60s;
    p.panic_window = 6s;
    p.panic_threshold = 2.0;
    p.scale_up_delay = 0s;
    p.scale_down_delay = 30s;
    p.scale_to_zero_after = 120s;
    return p;
  }
  // Feeds `in_flight` every 100 ms for `d`, deciding after each sample as the engine's
  // loop does, and applying the decision; returns the last decision.
  ScaleDecision Run(Autoscaler& a, double in_flight, std::chrono::milliseconds d, int* current) {
    ScaleDecision last;
    for (auto t = 0ms; t < d; t += 100ms) {
      clock_.Advance(100ms);
      a.Observe(in_flight, in_flight > 0 ? 1 : 0);
      last = a.Decide(*current, *current);
      *current = last.desired;
    }
    return last;
  }
  ManualClock clock_;
};

TEST_F(AutoscalerTest, SteadyLoadScalesToInFlightOverTarget) {
  Autoscaler a(Policy(), {1, 10, 3}, &clock_);
  int n = 3;
  // 14 in flight over a target of 4 needs 4 replicas: more than 3, less than the panic
  // threshold's 2 x 3.
  auto d = Run(a, 14, 10s, &n);
  EXPECT_FALSE(d.panic);
  EXPECT_EQ(n, 4) << d.reason;
  d = Run(a, 14, 100s, &n);
  EXPECT_EQ(n, 4) << "steady: " << d.reason;
}

TEST_F(AutoscalerTest, BurstPanicsAndScalesAtOnce) {
  Autoscaler a(Policy(), {1, 10, 1}, &clock_);
  int n = 1;
  Run(a, 1, 50s, &n);  // a long quiet stable window
  ASSERT_EQ(n, 1);
  clock_.Advance(100ms);
  a.Observe(40, 40);  // a burst: 10 replicas' worth
  auto d = a.Decide(1, 1);
  // The panic window averages the blip with the quiet samples before it (mean ~1.6):
  // one sample does not panic, a sustained burst does.
  EXPECT_FALSE(d.panic) << d.reason;
  d = Run(a, 40, 7s, &n);
  EXPECT_TRUE(d.panic);
  EXPECT_EQ(n, 10) << d.reason;
}

TEST_F(AutoscalerTest, NoScaleDownDuringPanicThenDownAfterDelay) {
  Autoscaler a(Policy(), {1, 10, 1}, &clock_);
  int n = 1;
  Run(a, 40, 6s, &n);
  ASSERT_EQ(n, 10);
  // Load gone: panic holds the count for a whole stable window since the last burst.
  auto d = Run(a, 0, 50s, &n);
  EXPECT_TRUE(d.panic);
  EXPECT_EQ(n, 10);
  // Out of panic; the stable average still remembers the burst, then decays; the lower
  // recommendation must hold for scale_down_delay (30 s) before it applies.
  d = Run(a, 0, 10s, &n);
  EXPECT_FALSE(d.panic);
  EXPECT_EQ(n, 10) << "scale-down waits for its delay: " << d.reason;
  d = Run(a, 0, 60s, &n);
  EXPECT_EQ(n, 1) << d.reason;
}

TEST_F(AutoscalerTest, ScaleUpDelayIgnoresShortSpikes) {
  AutoscalingPolicy p = Policy();
  p.scale_up_delay = 5s;
  p.panic_threshold = 100;  // keep panic out of this test
  Autoscaler a(p, {1, 10, 1}, &clock_);
  int n = 1;
  Run(a, 0, 10s, &n);
  Run(a, 30, 2s, &n);
  EXPECT_EQ(n, 1) << "a 2 s spike is shorter than the 5 s delay";
  Run(a, 0, 10s, &n);
  auto d = Run(a, 30, 8s, &n);
  EXPECT_GT(n, 1) << d.reason;
}

TEST_F(AutoscalerTest, ClampsToMax) {
  Autoscaler a(Policy(), {2, 3, 2}, &clock_);
  int n = 2;
  Run(a, 400, 5s, &n);
  EXPECT_EQ(n, 3);
  Run(a, 0, 200s, &n);
  EXPECT_EQ(n, 2) << "never below min";
}

TEST_F(AutoscalerTest, ScalesToZeroOnlyAfterTheIdlePeriod) {
  Autoscaler a(Policy(), {0, 4, 1}, &clock_);
  int n = 1;
  Run(a, 1, 5s, &n);
  Run(a, 0, 110s, &n);
  EXPECT_EQ(n, 1) << "idle 110 s < scale_to_zero_after 120 s";
  auto d = Run(a, 0, 15s, &n);
  EXPECT_EQ(n, 0) << d.reason;
  // Idle at zero stays at zero.
  Run(a, 0, 10s, &n);
  EXPECT_EQ(n, 0);
}

TEST_F(AutoscalerTest, ColdStartAsksForAReplicaAtOnce) {
  AutoscalingPolicy p = Policy();
  p.scale_up_delay = 30s;  // does not apply to a cold start
  Autoscaler a(p, {0, 4, 0}, &clock_);
  int n = 0;
  Run(a, 0, 5s, &n);
  EXPECT_EQ(n, 0);
  clock_.Advance(100ms);
  a.Observe(1, 1);
  auto d = a.Decide(0, 0);
  EXPECT_EQ(d.desired, 1) << d.reason;
  EXPECT_NE(d.reason.find("cold start"), std::string::npos);
}

TEST_F(AutoscalerTest, DisabledKeepsTheCountWithinBounds) {
  AutoscalingPolicy p = Policy();
  p.enabled = false;
  Autoscaler a(p, {1, 3, 2}, &clock_);
  int n = 2;
  Run(a, 100, 10s, &n);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(a.Decide(7, 7).desired, 3);
}

// A latency feed: `per_tick` requests answered in `latency_s` every `every` 100 ms ticks,
// with a fixed in-flight count; `ready` replicas (-1: all of them).
struct LatencyFeed {
  double in_flight;
  double latency_s;
  int per_tick;
  int every = 1;
  int ready = -1;
};

class LatencyObjectiveTest : public AutoscalerTest {
 protected:
  AutoscalingPolicy LatencyPolicy() {
    AutoscalingPolicy p = Policy();
    p.target_p95 = 50ms;
    p.latency_window = 10s;
    p.panic_threshold = 100;  // in-flight stays low here: only the latency objective acts
    return p;
  }
  ScaleDecision RunLatency(Autoscaler& a, LatencyFeed f, std::chrono::milliseconds d, int* current) {
    ScaleDecision last;
    int tick = 0;
    for (auto t = 0ms; t < d; t += 100ms, ++tick) {
      clock_.Advance(100ms);
      LatencyHistogram::Counts c{};
      const int n = tick % f.every == 0 ? f.per_tick : 0;
      c[LatencyHistogram::Bucket(f.latency_s)] = static_cast<uint64_t>(n);
      a.Observe(f.in_flight, n, &c);
      last = a.Decide(*current, f.ready < 0 ? *current : f.ready);
      *current = last.desired;
    }
    return last;
  }
};

TEST_F(LatencyObjectiveTest, SlowRequestsAddAReplicaPerWindow) {
  Autoscaler a(LatencyPolicy(), {1, 4, 1}, &clock_);
  int n = 1;
  // 2 in flight over a target of 4 keeps the in-flight rule at 1 replica; a p95 of 80 ms
  // over the 50 ms objective adds one at once, then one more per latency window.
  ScaleDecision step;
  for (int i = 0; i < 5 && n == 1; ++i) step = RunLatency(a, {2, 0.080, 5}, 100ms, &n);
  EXPECT_EQ(n, 2) << step.reason;
  EXPECT_NE(step.reason.find("latency: p95 8"), std::string::npos) << step.reason;
  RunLatency(a, {2, 0.080, 5}, 9s, &n);
  EXPECT_EQ(n, 2) << "one step per latency window";
  RunLatency(a, {2, 0.080, 5}, 1500ms, &n);
  EXPECT_EQ(n, 3);
  RunLatency(a, {2, 0.080, 5}, 60s, &n);
  EXPECT_EQ(n, 4) << "bounded by max";
}

TEST_F(LatencyObjectiveTest, WaitsForTheNewReplicaToBeReady) {
  Autoscaler a(LatencyPolicy(), {1, 4, 1}, &clock_);
  int n = 1;
  RunLatency(a, {2, 0.080, 20}, 100ms, &n);
  ASSERT_EQ(n, 2);
  // The new replica is not ready: 20 s later there is still no third one.
  RunLatency(a, {2, 0.080, 5, 1, /*ready=*/1}, 20s, &n);
  EXPECT_EQ(n, 2);
}

TEST_F(LatencyObjectiveTest, FewRequestsOrFastOnesDoNothing) {
  Autoscaler a(LatencyPolicy(), {1, 4, 1}, &clock_);
  int n = 1;
  // 1 slow request a second: 10 in the window, under kLatencyMinRequests.
  RunLatency(a, {1, 0.5, 1, /*every=*/10}, 30s, &n);
  EXPECT_EQ(n, 1);
  RunLatency(a, {2, 0.010, 20}, 30s, &n);
  EXPECT_EQ(n, 1) << "p95 10 ms is under the objective";
}

TEST_F(LatencyObjectiveTest, NoScaleDownNearTheObjective) {
  Autoscaler a(LatencyPolicy(), {1, 4, 3}, &clock_);
  int n = 3;
  // The in-flight rule wants 1 replica, but the p95 (45 ms) is within the headroom
  // (0.8 x 50 ms = 40 ms): the count holds.
  RunLatency(a, {1, 0.045, 10}, 120s, &n);
  EXPECT_EQ(n, 3);
  // Fast again: the in-flight rule scales down after its delay.
  RunLatency(a, {1, 0.005, 10}, 120s, &n);
  EXPECT_EQ(n, 1);
}

TEST_F(LatencyObjectiveTest, OffByDefault) {
  Autoscaler a(Policy(), {1, 4, 1}, &clock_);
  int n = 1;
  RunLatency(a, {2, 5.0, 50}, 60s, &n);
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace ferry::engine
