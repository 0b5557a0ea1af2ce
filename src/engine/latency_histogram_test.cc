#include "engine/latency_histogram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace ferry::engine {
namespace {

TEST(LatencyHistogramTest, BucketsAreLogSpacedAndBounded) {
  EXPECT_EQ(LatencyHistogram::Bucket(0), 0);
  EXPECT_EQ(LatencyHistogram::Bucket(-1), 0);
  EXPECT_EQ(LatencyHistogram::Bucket(std::numeric_limits<double>::quiet_NaN()), 0);
  EXPECT_EQ(LatencyHistogram::Bucket(50e-6), 0);
  EXPECT_EQ(LatencyHistogram::Bucket(51e-6), 1);
  EXPECT_EQ(LatencyHistogram::Bucket(1e6), LatencyHistogram::kBuckets - 1);
  // Every latency lies at or below its bucket's upper edge and above the previous one.
  for (double s : {60e-6, 1e-4, 1e-3, 0.0123, 0.5, 3.0, 40.0}) {
    const int b = LatencyHistogram::Bucket(s);
    EXPECT_LE(s, LatencyHistogram::UpperEdge(b) * (1 + 1e-9)) << s;
    EXPECT_GT(s, LatencyHistogram::UpperEdge(b - 1)) << s;
  }
  EXPECT_GT(LatencyHistogram::UpperEdge(LatencyHistogram::kBuckets - 2), 100.0);
}

TEST(LatencyHistogramTest, QuantileIsWithinTenPercent) {
  LatencyHistogram h;
  EXPECT_FALSE(LatencyHistogram::Quantile(h.Read(), 0.95).has_value());
  for (int i = 0; i < 95; ++i) h.Record(0.001);
  for (int i = 0; i < 5; ++i) h.Record(0.2);
  const auto c = h.Read();
  const double p95 = *LatencyHistogram::Quantile(c, 0.95);
  EXPECT_GT(p95, 0.001 / 1.1);
  EXPECT_LE(p95, 0.001 * 1.1);
  const double p96 = *LatencyHistogram::Quantile(c, 0.96);
  EXPECT_GT(p96, 0.2 / 1.1);
  EXPECT_LE(p96, 0.2 * 1.1);
  EXPECT_LE(p96, *LatencyHistogram::Quantile(c, 1.0));
  // A uniform spread: the interpolation lands near the true quantile.
  LatencyHistogram u;
  for (int i = 1; i <= 1000; ++i) u.Record(i * 1e-4);  // 0.1 ms .. 100 ms
  const double q = *LatencyHistogram::Quantile(u.Read(), 0.95);
  EXPECT_NEAR(q, 0.095, 0.095 * 0.1);
}

}  // namespace
}  // namespace ferry::engine
