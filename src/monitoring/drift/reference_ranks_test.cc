#include "monitoring/drift/reference_ranks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "monitoring/drift/feature_sketch.h"
#include "monitoring/drift/profile_builder.h"
#include "monitoring/feature_rows.h"

namespace ferry::monitoring::drift {
namespace {

// A one-feature profile of `values` (as `ferry profile build` makes it: KLL k = 200 and
// decile edges) and its sketch.
FeatureSketch Reference(const std::vector<double>& values) {
  ProfileBuilder b({});
  b.AddFeature("x", FeatureKind::kNumeric, "", 0);
  for (double v : values) {
    b.AddNumber(0, v);
    b.CountRow();
  }
  return b.Finish("test").features[0].sketch;
}

std::vector<double> Normal(size_t n, uint64_t seed, double round_to = 0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d;
  std::vector<double> v(n);
  for (auto& x : v) x = round_to > 0 ? std::round(d(rng) / round_to) * round_to : d(rng);
  return v;
}

// The slot by definition: 0 below the first knot, 2i+1 equal to knot i, 2i+2 after it.
size_t BruteSlot(const ReferenceKnots& k, double x) {
  size_t j = 0;
  while (j < k.knot_count() && k.knot(j) <= x) ++j;
  return j == 0 ? 0 : (k.knot(j - 1) == x ? 2 * j - 1 : 2 * j);
}

// The exact two-sample KS D between the reference sketch's items and raw window values.
double BruteD(const KllSketch& ref, std::vector<double> window) {
  std::sort(window.begin(), window.end());
  const auto items = ref.SortedItems();
  std::vector<double> points = window;
  for (const auto& [v, w] : items) points.push_back(v);
  double d = 0;
  for (double x : points) {
    double ca = 0;
    for (const auto& [v, w] : items) ca += v <= x ? static_cast<double>(w) : 0.0;
    const double cb = static_cast<double>(std::upper_bound(window.begin(), window.end(), x) - window.begin());
    d = std::max(d, std::abs(ca / static_cast<double>(ref.count()) - cb / static_cast<double>(window.size())));
  }
  return d;
}

TEST(ReferenceKnots, SlotsAgreeWithTheirDefinition) {
  for (double round_to : {0.0, 0.25}) {  // continuous, and heavy ties with the knots
    const FeatureSketch ref = Reference(Normal(5000, 1, round_to));
    const auto knots = ReferenceKnots::Build(ref);
    ASSERT_GT(knots->knot_count(), round_to > 0 ? 20u : 300u);  // 25 distinct values when rounded
    // Every edge is a knot, so no slot straddles a histogram bin.
    for (double e : ref.histogram.edges()) EXPECT_EQ(knots->Slot(e) % 2, 1u) << e;
    std::vector<double> probes = Normal(20000, 2, round_to);
    for (size_t i = 0; i < knots->knot_count(); ++i) {
      const double k = knots->knot(i);
      probes.insert(probes.end(), {k, std::nextafter(k, -HUGE_VAL), std::nextafter(k, HUGE_VAL)});
    }
    probes.insert(probes.end(), {-HUGE_VAL, HUGE_VAL, -1e300, 1e300, 0.0, -0.0,
                                 std::numeric_limits<double>::denorm_min()});
    for (double x : probes) ASSERT_EQ(knots->Slot(x), BruteSlot(*knots, x)) << "x = " << x << " round " << round_to;
  }
}

TEST(ReferenceKnots, CrowdedCellsAreSearched) {
  // Two tight clusters far apart: the grid's cells are wide against a cluster's spread,
  // so most knots share a cell with others and are found by the search from the cell's
  // first knot; values between and around the knots must still get their own slots.
  std::vector<double> values = Normal(2000, 11);
  for (auto& v : values) v *= 1e-6;
  for (double v : Normal(2000, 12)) values.push_back(1000.0 + v);
  const FeatureSketch ref = Reference(values);
  const auto knots = ReferenceKnots::Build(ref);
  std::vector<double> probes = {-1.0, 500.0, 2000.0, 1e-7, -1e-7};
  for (size_t i = 0; i < knots->knot_count(); ++i) {
    const double k = knots->knot(i);
    probes.insert(probes.end(), {k, std::nextafter(k, -HUGE_VAL), std::nextafter(k, HUGE_VAL)});
    if (i + 1 < knots->knot_count()) probes.push_back(0.5 * (k + knots->knot(i + 1)));
  }
  for (double x : probes) ASSERT_EQ(knots->Slot(x), BruteSlot(*knots, x)) << "x = " << x;
}

TEST(ReferenceKnots, DegenerateReferencesStillCount) {
  // One distinct value (no grid), and no values at all.
  const FeatureSketch constant = Reference(std::vector<double>(50, 3.0));
  const auto k = ReferenceKnots::Build(constant);
  EXPECT_EQ(k->knot_count(), 1u);
  EXPECT_EQ(k->Slot(2.0), 0u);
  EXPECT_EQ(k->Slot(3.0), 1u);
  EXPECT_EQ(k->Slot(4.0), 2u);
  FeatureSketch empty;
  const auto none = ReferenceKnots::Build(empty);
  EXPECT_EQ(none->slots(), 1u);
  EXPECT_EQ(none->Slot(1.0), 0u);
  WindowRanks w(none);
  w.Add(1.0);
  EXPECT_EQ(w.KsTest(empty.quantiles).p_value, 1.0);  // nothing to compare with
}

TEST(WindowRanks, KsIsTheExactStatisticAgainstTheReferenceSketch) {
  for (double round_to : {0.0, 0.5}) {
    const FeatureSketch ref = Reference(Normal(5000, 3, round_to));
    const auto knots = ReferenceKnots::Build(ref);
    // 300 rows (an exact KLL window too: both tests must agree) and 3000 (a KLL window
    // of k = 200 would have compacted; the counts stay exact), one shifted.
    for (size_t n : {300u, 3000u}) {
      for (double shift : {0.0, 0.2}) {
        std::vector<double> values = Normal(n, 4 + n, round_to);
        for (auto& v : values) v += shift;
        WindowRanks w(knots);
        KllSketch exact(200, KllSketch::kDefaultSeed, 4 * 3000);
        for (double v : values) {
          w.Add(v);
          exact.Add(v);
        }
        const TestResult r = w.KsTest(ref.quantiles);
        EXPECT_NEAR(r.statistic, BruteD(ref.quantiles, values), 1e-12) << n << " " << shift << " " << round_to;
        const TestResult s = KsTest(ref.quantiles, exact);
        EXPECT_NEAR(r.statistic, s.statistic, 1e-12);
        EXPECT_NEAR(*r.p_value, *s.p_value, 1e-12);
        if (shift > 0 && n == 3000) {
          EXPECT_LT(*r.p_value, 1e-6);
        }
      }
    }
  }
}

TEST(WindowRanks, BinCountsAreTheHistogramsOwn) {
  const FeatureSketch ref = Reference(Normal(5000, 5, 0.25));
  const auto knots = ReferenceKnots::Build(ref);
  FixedHistogram h = ref.histogram;
  h.Clear();
  WindowRanks w(knots);
  std::vector<double> values = Normal(777, 6, 0.25);
  for (double e : ref.histogram.edges()) values.push_back(e);  // values on the edges
  values.insert(values.end(), {-50.0, 50.0});
  for (double v : values) {
    w.Add(v);
    h.Add(v);
  }
  EXPECT_EQ(w.BinCounts(), h.counts());
  EXPECT_EQ(w.count(), values.size());
  // The KS sweep that takes the bin counts on the way: the same bins, the same test.
  std::vector<uint64_t> bins;
  const TestResult with_bins = w.KsTest(ref.quantiles, &bins);
  EXPECT_EQ(bins, h.counts());
  EXPECT_EQ(with_bins.statistic, w.KsTest(ref.quantiles).statistic);
  EXPECT_EQ(*with_bins.p_value, *w.KsTest(ref.quantiles).p_value);
  // Values only below the first knot, then only above the last: the first and last bins.
  for (double far : {-50.0, 50.0}) {
    WindowRanks one(knots);
    for (int i = 0; i < 3; ++i) one.Add(far);
    ASSERT_GT(one.KsTest(ref.quantiles, &bins).statistic, 0.9);
    EXPECT_EQ(bins, one.BinCounts()) << far;
    EXPECT_EQ(far < 0 ? bins.front() : bins.back(), 3u);
  }
  WindowRanks none(knots);
  EXPECT_EQ(none.KsTest(ref.quantiles, &bins).p_value, 1.0);
  EXPECT_EQ(bins, std::vector<uint64_t>(h.counts().size(), 0));
}

TEST(WindowRanks, ColumnsOfRowsCountAsTheirValues) {
  // Rows of 3 features, row-major as a FeatureRowBlock holds them, with missing (NaN) and
  // absent values: AddRows (in tiles, column by column) must leave every feature as
  // AddNumber of each of its values that is not absent does.
  const FeatureSketch ref = Reference(Normal(3000, 13, 0.25));
  const auto knots = ReferenceKnots::Build(ref);
  const size_t width = 3, n = 2 * kRowTile + 37;
  std::vector<double> rows = Normal(width * n, 14, 0.25);
  for (size_t i = 0; i < n; i += 7) rows[i * width + 1] = std::nan("");
  for (size_t i = 3; i < n; i += 11) rows[i * width + 2] = AbsentValue();
  rows[5 * width] = ref.histogram.edges().front();
  std::vector<FeatureSketch> batch(width, ref.ExactWindow(knots)), single = batch;
  AddRows(batch, rows.data(), n);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < width; ++j)
      if (!IsAbsentValue(rows[i * width + j])) single[j].AddNumber(rows[i * width + j]);
  for (size_t j = 0; j < width; ++j) {
    EXPECT_EQ(batch[j].rows, single[j].rows) << j;
    EXPECT_EQ(batch[j].missing, single[j].missing) << j;
    EXPECT_EQ(batch[j].ranks.count(), single[j].ranks.count()) << j;
    EXPECT_EQ(batch[j].ranks.BinCounts(), single[j].ranks.BinCounts()) << j;
    EXPECT_EQ(batch[j].ranks.KsTest(ref.quantiles).statistic, single[j].ranks.KsTest(ref.quantiles).statistic) << j;
  }
  EXPECT_EQ(batch[0].rows, n);
  EXPECT_EQ(batch[1].missing, (n + 6) / 7);
  EXPECT_EQ(batch[2].rows, n - (n - 3 + 10) / 11);
  EXPECT_EQ(batch[2].missing, 0u);
  // A sketched window (no knots) takes the column by AddNumber.
  std::vector<FeatureSketch> sketched(width, ref.EmptyLike(200));
  AddRows(sketched, rows.data(), n);
  EXPECT_EQ(sketched[1].missing, batch[1].missing);
  EXPECT_EQ(sketched[2].rows, batch[2].rows);
  EXPECT_EQ(sketched[0].quantiles.count(), n);
}

TEST(WindowRanks, MergedWindowsCountTheUnion) {
  const FeatureSketch ref = Reference(Normal(2000, 7));
  const auto knots = ReferenceKnots::Build(ref);
  const std::vector<double> values = Normal(1001, 8);  // not a multiple of the buffer
  WindowRanks all(knots), a(knots), b(knots);
  for (size_t i = 0; i < values.size(); ++i) {
    all.Add(values[i]);
    (i < 333 ? a : b).Add(values[i]);
  }
  WindowRanks merged(knots);
  merged.Merge(a);
  merged.Merge(b);
  EXPECT_EQ(merged.count(), values.size());
  EXPECT_EQ(merged.BinCounts(), all.BinCounts());
  EXPECT_EQ(merged.KsTest(ref.quantiles).statistic, all.KsTest(ref.quantiles).statistic);
  all.Clear();
  EXPECT_EQ(all.count(), 0u);
}

TEST(FeatureSketch, ExactWindowsOfDifferentReferencesDoNotMerge) {
  const FeatureSketch r1 = Reference(Normal(500, 9)), r2 = Reference(Normal(500, 10));
  FeatureSketch w1 = r1.ExactWindow(ReferenceKnots::Build(r1));
  FeatureSketch w2 = r1.ExactWindow(ReferenceKnots::Build(r2));
  w1.AddNumber(1.0);
  w1.AddNumber(std::nan(""));
  w2.AddNumber(1.0);
  EXPECT_EQ(w1.rows, 2u);
  EXPECT_EQ(w1.missing, 1u);
  EXPECT_EQ(w1.ranks.count(), 1u);
  EXPECT_TRUE(w1.quantiles.empty());  // counted, not sketched
  const Status s = w1.Merge(w2);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("reference knots"), std::string::npos) << s.message();
  FeatureSketch same = r1.ExactWindow(w1.ranks.knots());
  same.AddNumber(2.0);
  ASSERT_TRUE(w1.Merge(same).ok());
  EXPECT_EQ(w1.ranks.count(), 2u);
}

}  // namespace
}  // namespace ferry::monitoring::drift
