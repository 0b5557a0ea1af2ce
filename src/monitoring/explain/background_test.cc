#include "monitoring/explain/background.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace ferry::monitoring::explain {
namespace {

drift::ProfileFeature Numeric(std::string name, uint32_t index, double lo) {
  drift::ProfileFeature f;
  f.name = std::move(name);
  f.index = index;
  f.sketch.kind = drift::FeatureKind::kNumeric;
  for (int i = 0; i < 100; ++i) f.sketch.AddNumber(lo + i);  // lo .. lo + 99
  return f;
}

TEST(Background, ColumnsHoldEachFeaturesQuantilesInShuffledOrder) {
  drift::ReferenceProfile p;
  p.features.push_back(Numeric("b", 1, 1000));
  p.features.push_back(Numeric("a", 0, 0));
  auto m = BackgroundFromProfile(p, "x", 2, 10, 3);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->rows, 10);
  ASSERT_EQ(m->cols, 2);
  for (int64_t c = 0; c < 2; ++c) {
    std::vector<double> col;
    for (int64_t r = 0; r < 10; ++r) col.push_back(m->at(r, c));
    std::vector<double> sorted = col;
    std::sort(sorted.begin(), sorted.end());
    const double lo = c == 0 ? 0 : 1000;
    for (int j = 0; j < 10; ++j) EXPECT_NEAR(sorted[j], lo + 10 * j + 5, 1.0) << "column " << c;
  }
  // Shuffled independently: the columns are not in the same rank order.
  bool same = true;
  for (int64_t r = 1; r < 10; ++r)
    same = same && ((m->at(r, 0) > m->at(r - 1, 0)) == (m->at(r, 1) > m->at(r - 1, 1)));
  EXPECT_FALSE(same);
}

TEST(Background, RefusesAMissingOrCategoricalFeature) {
  drift::ReferenceProfile p;
  p.features.push_back(Numeric("a", 0, 0));
  auto missing = BackgroundFromProfile(p, "x", 2, 4, 0);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no feature at index 1"), std::string::npos) << missing.status().message();
  drift::ProfileFeature cat;
  cat.name = "colour";
  cat.index = 1;
  cat.sketch.kind = drift::FeatureKind::kCategorical;
  p.features.push_back(cat);
  auto categorical = BackgroundFromProfile(p, "x", 2, 4, 0);
  ASSERT_FALSE(categorical.ok());
  EXPECT_NE(categorical.status().message().find("features[1] ('colour')"), std::string::npos)
      << categorical.status().message();
}

}  // namespace
}  // namespace ferry::monitoring::explain
