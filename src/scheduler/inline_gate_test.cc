#include "scheduler/inline_gate.h"

#include <gtest/gtest.h>

namespace ferry::scheduler {
namespace {

constexpr uint64_t kUs = 1000;

void ObserveMany(InlineGate& gate, int n, uint64_t ns, int64_t rows = 1) {
  for (int i = 0; i < n; ++i) gate.Observe(ns, rows);
}

TEST(InlineGateTest, ThresholdZeroNeverOpens) {
  InlineGate gate(0);
  ObserveMany(gate, 100, 1);
  EXPECT_FALSE(gate.Allows());
}

TEST(InlineGateTest, StaysShutUntilEnoughExecutionsWereSeen) {
  InlineGate gate(50 * kUs, 4);
  EXPECT_FALSE(gate.Allows());
  gate.Observe(2 * kUs);
  EXPECT_EQ(gate.average_ns_per_row(), 0u);  // the first execution is not averaged
  ObserveMany(gate, 2, 2 * kUs);
  EXPECT_FALSE(gate.Allows());
  gate.Observe(2 * kUs);
  EXPECT_TRUE(gate.Allows());
  EXPECT_EQ(gate.average_ns_per_row(), 2 * kUs);
}

TEST(InlineGateTest, SlowFirstExecutionDoesNotDelayTheGate) {
  InlineGate gate(50 * kUs);
  gate.Observe(20'000 * kUs);  // lazy set-up on the first run
  ObserveMany(gate, InlineGate::kDefaultMinObservations - 1, 2 * kUs);
  EXPECT_TRUE(gate.Allows());
  EXPECT_EQ(gate.average_ns_per_row(), 2 * kUs);
}

TEST(InlineGateTest, SlowModelNeverOpens) {
  InlineGate gate(50 * kUs);
  ObserveMany(gate, 1000, 51 * kUs);
  EXPECT_FALSE(gate.Allows());
}

TEST(InlineGateTest, OneSlowExecutionShutsAtOnceAndFastOnesReopen) {
  InlineGate gate(50 * kUs);
  ObserveMany(gate, 20, 2 * kUs);
  ASSERT_TRUE(gate.Allows());
  // 8x the threshold moves the average (weight 1/8) past it by itself.
  gate.Observe(400 * kUs);
  EXPECT_FALSE(gate.Allows());
  EXPECT_GT(gate.average_ns_per_row(), 50 * kUs);
  // 2 + 398/8 = 51.75 us; each fast execution takes an eighth of the excess off, so the
  // next one brings it back under 50 us.
  int fast = 0;
  while (!gate.Allows() && fast < 100) {
    gate.Observe(2 * kUs);
    ++fast;
  }
  EXPECT_TRUE(gate.Allows());
  EXPECT_GE(fast, 1);
  EXPECT_LE(fast, 2);
}

TEST(InlineGateTest, ModelGettingSlowerShutsOnceTheAverageCrosses) {
  InlineGate gate(50 * kUs);
  ObserveMany(gate, 20, 10 * kUs);
  ASSERT_TRUE(gate.Allows());
  ObserveMany(gate, 30, 200 * kUs);
  EXPECT_FALSE(gate.Allows());
}

TEST(InlineGateTest, BiggerJobsNeedAProportionallySmallerAverage) {
  InlineGate gate(50 * kUs);
  // 40 us for 4 rows: 10 us per row.
  ObserveMany(gate, 10, 40 * kUs, 4);
  EXPECT_EQ(gate.average_ns_per_row(), 10 * kUs);
  EXPECT_TRUE(gate.Allows(1));
  EXPECT_TRUE(gate.Allows(5));
  EXPECT_FALSE(gate.Allows(6));
  EXPECT_FALSE(gate.Allows(int64_t{1} << 62));  // no overflow into "allowed"
}

}  // namespace
}  // namespace ferry::scheduler
