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

}  // namespace
}  // namespace ferry::engine
