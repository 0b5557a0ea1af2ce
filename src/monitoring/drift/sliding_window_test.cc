#include "monitoring/drift/sliding_window.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "monitoring/drift/profile_builder.h"

namespace ferry::monitoring::drift {
namespace {

FeatureSketch Reference(uint64_t seed) {
  ProfileBuilder b({});
  b.AddFeature("x", FeatureKind::kNumeric, "", 0);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d;
  for (int i = 0; i < 2000; ++i) {
    b.AddNumber(0, d(rng));
    b.CountRow();
  }
  return b.Finish("test").features[0].sketch;
}

// A window's counts per histogram bin: what the windows are compared by here.
std::vector<uint64_t> Bins(const FeatureSketch& s) { return s.ranks.BinCounts(); }

TEST(SlidingWindow, TheWindowIsItsClosedStepsAndSealedStepsStartEmpty) {
  const FeatureSketch ref = Reference(1);
  const FeatureSketch empty = ref.ExactWindow(ReferenceKnots::Build(ref));
  for (uint32_t steps : {1u, 3u}) {
    SlidingWindow w({empty}, steps);
    std::vector<FeatureSketch> scratch;
    EXPECT_EQ(w.Window(&scratch)[0].rows, 0u);  // nothing closed yet
    // Step s holds s + 1 values, each -1.5 + 0.5·s: the window after step s is the union
    // of the last `steps` of them, and a step reused after its eviction starts empty.
    for (int s = 0; s < 6; ++s) {
      for (int i = 0; i <= s; ++i) w.open()[0].AddNumber(-1.5 + 0.5 * s);
      w.CountRows(static_cast<uint64_t>(s + 1));
      w.Seal();
      EXPECT_EQ(w.open()[0].rows, 0u);
      EXPECT_EQ(w.open()[0].ranks.count(), 0u);
      FeatureSketch want = empty;
      uint64_t rows = 0;
      for (int t = std::max(0, s - static_cast<int>(steps) + 1); t <= s; ++t) {
        for (int i = 0; i <= t; ++i) want.AddNumber(-1.5 + 0.5 * t);
        rows += static_cast<uint64_t>(t + 1);
      }
      const std::vector<FeatureSketch>& window = w.Window(&scratch);
      ASSERT_EQ(window.size(), 1u);
      EXPECT_EQ(window[0].rows, want.rows) << steps << " " << s;
      EXPECT_EQ(window[0].ranks.count(), want.ranks.count()) << steps << " " << s;
      EXPECT_EQ(Bins(window[0]), Bins(want)) << steps << " " << s;
      EXPECT_EQ(Bins(w.Merged()[0]), Bins(want)) << steps << " " << s;
      EXPECT_EQ(w.rows(), rows);
    }
  }
}

TEST(FeatureSketch, ResetToEmptiesAWindowInPlace) {
  const FeatureSketch ref = Reference(2);
  const FeatureSketch empty = ref.ExactWindow(ReferenceKnots::Build(ref));
  FeatureSketch s = empty;
  s.AddNumber(0.1);
  s.AddNumber(std::nan(""));
  s.ranks.Flush();
  s.AddNumber(0.2);  // one left in the buffer
  s.ResetTo(empty);
  EXPECT_EQ(s.rows, 0u);
  EXPECT_EQ(s.missing, 0u);
  EXPECT_EQ(s.ranks.count(), 0u);
  EXPECT_TRUE(s.ranks.SameKnots(empty.ranks));
  EXPECT_EQ(Bins(s), Bins(empty));
  // Against other knots it becomes a copy of `empty`, knots included.
  const FeatureSketch other = ref.ExactWindow(ReferenceKnots::Build(Reference(3)));
  s.AddNumber(0.3);
  s.ResetTo(other);
  EXPECT_TRUE(s.ranks.SameKnots(other.ranks));
  EXPECT_EQ(s.ranks.count(), 0u);
}

}  // namespace
}  // namespace ferry::monitoring::drift
