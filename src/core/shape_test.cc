#include "core/shape.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(ShapeTest, ElementCount) {
  EXPECT_EQ(ElementCount({2, 3, 4}), 24u);
  EXPECT_EQ(ElementCount({}), 1u);
  EXPECT_EQ(ElementCount({0, 5}), 0u);
  EXPECT_FALSE(ElementCount({-1, 3}).has_value());
  EXPECT_FALSE(ElementCount({1LL << 40, 1LL << 40}).has_value());
}

TEST(ShapeTest, VariableDimensionsMatchAnySize) {
  EXPECT_TRUE(ShapeMatches({-1, 16}, {8, 16}));
  EXPECT_FALSE(ShapeMatches({-1, 16}, {8, 15}));
  EXPECT_FALSE(ShapeMatches({-1, 16}, {16}));
  EXPECT_EQ(ShapeToString({-1, 3}), "[-1,3]");
}

}  // namespace
}  // namespace ferry
