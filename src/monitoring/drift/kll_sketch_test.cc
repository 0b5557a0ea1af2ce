#include "monitoring/drift/kll_sketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "monitoring/drift/histogram.h"
#include "monitoring/drift/category_counts.h"

namespace ferry::monitoring::drift {
namespace {

// Fraction of `sorted` that is <= x.
double ExactCdf(const std::vector<double>& sorted, double x) {
  return static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(), x) - sorted.begin()) / sorted.size();
}

std::vector<double> Normal(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0, 1);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// The largest |estimated rank - true rank| over 99 quantile points.
double MaxRankError(const KllSketch& s, std::vector<double> data) {
  std::sort(data.begin(), data.end());
  double worst = 0;
  for (int i = 1; i < 100; ++i) {
    const double x = data[static_cast<size_t>(i / 100.0 * (data.size() - 1))];
    worst = std::max(worst, std::abs(s.Cdf(x) - ExactCdf(data, x)));
  }
  return worst;
}

TEST(KllSketch, ExactUntilTheFirstCompaction) {
  KllSketch s(200);
  auto data = Normal(150, 1);
  for (double x : data) s.Add(x);
  EXPECT_EQ(s.rank_variance(), 0);
  EXPECT_EQ(s.count(), 150u);
  auto sorted = data;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(s.min(), sorted.front());
  EXPECT_EQ(s.max(), sorted.back());
  EXPECT_EQ(s.Quantile(0.5), sorted[74]);  // rank 75 of 150
  EXPECT_EQ(MaxRankError(s, data), 0);
}

TEST(KllSketch, RankErrorWithinItsTrackedBoundOnSeededData) {
  for (uint64_t seed : {1, 2, 3, 4, 5}) {
    KllSketch s(200, seed);
    auto data = Normal(100000, seed);
    for (double x : data) s.Add(x);
    ASSERT_EQ(s.count(), 100000u);
    const double sigma = s.normalized_rank_error();
    // Measured: sigma ~ 0.0030 and max error over 99 points ~ 0.004 for k = 200.
    EXPECT_LT(sigma, 0.006) << "seed " << seed;
    EXPECT_LE(MaxRankError(s, data), 4 * sigma) << "seed " << seed;
    EXPECT_LT(s.retained(), 3u * 200 + 64);
  }
}

TEST(KllSketch, QuantilesMatchExactOnSkewedAndTiedData) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> e(1.0);
  std::vector<double> data;
  for (int i = 0; i < 50000; ++i) data.push_back(std::floor(e(rng) * 4));  // heavy ties
  KllSketch s(200, 7);
  for (double x : data) s.Add(x);
  EXPECT_LE(MaxRankError(s, data), 4 * s.normalized_rank_error() + 1e-12);
}

TEST(KllSketch, MergeIsTheSketchOfTheUnion) {
  auto a = Normal(30000, 11), b = Normal(20000, 12);
  for (auto& x : b) x += 1.0;
  KllSketch sa(200, 1), sb(200, 2);
  for (double x : a) sa.Add(x);
  for (double x : b) sb.Add(x);
  sa.Merge(sb);
  std::vector<double> all = a;
  all.insert(all.end(), b.begin(), b.end());
  EXPECT_EQ(sa.count(), all.size());
  EXPECT_LE(MaxRankError(sa, all), 4 * sa.normalized_rank_error());
  EXPECT_LT(sa.retained(), 3u * 200 + 64);
}

TEST(KllSketch, NanIsRefused) {
  KllSketch s;
  EXPECT_FALSE(s.Add(std::nan("")));
  EXPECT_TRUE(s.empty());
}

TEST(KllSketch, FromPartsRoundTripsAndNamesBadParts) {
  KllSketch s(64, 3);
  for (double x : Normal(5000, 3)) s.Add(x);
  auto copy = KllSketch::FromParts(s.k(), s.count(), s.min(), s.max(), s.rank_variance(), s.levels());
  ASSERT_TRUE(copy.ok()) << copy.status().message();
  EXPECT_EQ(copy->Quantile(0.3), s.Quantile(0.3));
  auto bad = KllSketch::FromParts(64, s.count() + 1, s.min(), s.max(), 0, s.levels());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("levels: item weights add up to"), std::string::npos);
  EXPECT_FALSE(KllSketch::FromParts(2, 0, 0, 0, 0, {}).ok());
}

TEST(FixedHistogram, BinsAndMerge) {
  auto h = FixedHistogram::WithEdges({0.0, 1.0, 2.0});
  ASSERT_TRUE(h.ok());
  for (double x : {-1.0, 0.0, 0.5, 1.0, 1.5, 2.5, 9.0}) h->Add(x);
  EXPECT_EQ(h->counts(), (std::vector<uint64_t>{2, 2, 1, 2}));
  auto g = *h;
  ASSERT_TRUE(g.Merge(*h).ok());
  EXPECT_EQ(g.total(), 14u);
  auto other = FixedHistogram::WithEdges({0.0});
  EXPECT_FALSE(g.Merge(*other).ok());
  EXPECT_FALSE(FixedHistogram::WithEdges({1.0, 1.0}).ok());
}

TEST(CategoryCounts, CapFoldsTheRestIntoOther) {
  CategoryCounts c(2);
  for (const char* v : {"a", "b", "a", "c", "d", "a"}) c.Add(v);
  EXPECT_EQ(c.values().size(), 2u);
  EXPECT_EQ(c.other(), 2u);
  EXPECT_EQ(c.total(), 6u);
  CategoryCounts big(100);
  for (const char* v : {"x", "y", "y", "z", "z", "z"}) big.Add(v);
  big.Trim(2);
  EXPECT_EQ(big.Keys(), (std::vector<std::string>{"y", "z"}));
  EXPECT_EQ(big.other(), 1u);
  auto frozen = CategoryCounts::Frozen(big.Keys());
  frozen.Add("x");
  frozen.Add("z");
  EXPECT_EQ(frozen.other(), 1u);
  EXPECT_EQ(frozen.values().at("z"), 1u);
}

}  // namespace
}  // namespace ferry::monitoring::drift
