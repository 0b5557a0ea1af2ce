#include "engine/surge_step.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace ferry::engine {
namespace {

TEST(SurgeStepTest, FirstStepStartsSurgeNewReplicasAndDrainsNothing) {
  const SurgeStep s = NextSurgeStep({.target = 3, .surge = 1, .old_desired = 3, .old_alive = 3, .new_desired = 0});
  EXPECT_EQ(s.new_desired, 1);
  EXPECT_EQ(s.old_desired, 3) << "nothing new is ready: every old replica keeps serving";
}

TEST(SurgeStepTest, AnOldReplicaDrainsOnlyOnceANewOneIsReady) {
  SurgeState st{.target = 3, .surge = 1, .old_desired = 3, .old_alive = 3, .new_desired = 1, .new_ready = 0};
  EXPECT_EQ(NextSurgeStep(st).old_desired, 3);
  EXPECT_EQ(NextSurgeStep(st).new_desired, 1) << "4 processes already: no second new replica";
  st.new_ready = 1;
  EXPECT_EQ(NextSurgeStep(st).old_desired, 2);
  EXPECT_EQ(NextSurgeStep(st).new_desired, 1) << "the drained old replica still runs: still no room";
  st.old_desired = 2;
  st.old_alive = 2;  // it exited
  EXPECT_EQ(NextSurgeStep(st).new_desired, 2);
}

// Walks a whole replacement as the control loop would, with replicas that become ready
// and processes that exit one tick after being asked: the invariants hold at every tick.
void Walk(int target, int surge, int old_start) {
  SurgeState st{.target = target, .surge = surge, .old_desired = old_start, .old_alive = old_start};
  int ticks = 0;
  while ((st.new_ready < target || st.old_alive > 0) && ticks < 1000) {
    const SurgeStep next = NextSurgeStep(st);
    ASSERT_LE(next.old_desired, st.old_desired) << "the old instance never grows";
    ASSERT_GE(next.new_desired, st.new_desired) << "the new instance never shrinks";
    ASSERT_LE(next.new_desired, target);
    // Ready replicas (old ones still desired are ready) never fall below the target,
    // unless the old instance had fewer to begin with.
    ASSERT_GE(next.old_desired + st.new_ready, std::min(target, old_start));
    ASSERT_LE(st.old_alive + next.new_desired, std::max(target, old_start) + surge) << "tick " << ticks;
    // One tick later: new replicas asked for are ready, old ones asked to go are gone.
    st.new_ready = st.new_desired;
    st.new_desired = next.new_desired;
    st.old_alive = st.old_desired;
    st.old_desired = next.old_desired;
    ++ticks;
  }
  EXPECT_EQ(st.new_ready, target);
  EXPECT_EQ(st.old_alive, 0);
}

TEST(SurgeStepTest, ReplacementsFinishWithinTheBounds) {
  Walk(3, 1, 3);
  Walk(10, 3, 10);
  Walk(4, 4, 4);  // surge = target: all at once
  Walk(3, 1, 5);  // the new bounds hold fewer replicas than run now
  Walk(5, 2, 2);  // ... or more
  Walk(1, 1, 1);
}

TEST(SurgeStepTest, TheOldInstanceShrinksAtOnceToANewSmallerTarget) {
  const SurgeStep s = NextSurgeStep({.target = 3, .surge = 1, .old_desired = 5, .old_alive = 5, .new_desired = 0});
  EXPECT_EQ(s.old_desired, 3);
  EXPECT_EQ(s.new_desired, 0) << "5 processes run; none new until two have gone";
}

}  // namespace
}  // namespace ferry::engine
