#include "monitoring/drift/sort_doubles.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>

namespace ferry::monitoring::drift {
namespace {

std::vector<double> Sorted(std::vector<double> v) {
  std::vector<double> scratch;
  SortDoubles(&v, &scratch);
  return v;
}

TEST(SortDoubles, MatchesStdSortOnShortAndLongInputs) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0, 1e3);
  std::uniform_int_distribution<int> small(-3, 3);  // heavy ties
  for (size_t n : {0u, 1u, 7u, 127u, 128u, 129u, 800u, 5000u}) {
    for (int kind = 0; kind < 3; ++kind) {
      std::vector<double> v(n);
      for (double& x : v) x = kind == 0 ? normal(rng) : kind == 1 ? small(rng) : 1.0 + normal(rng) * 1e-9;
      std::vector<double> want = v;
      std::sort(want.begin(), want.end());
      EXPECT_EQ(Sorted(v), want) << "n " << n << " kind " << kind;
    }
  }
}

TEST(SortDoubles, OrdersSignsInfinitiesAndExtremes) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> v;
  for (int i = 0; i < 40; ++i) {
    for (double x : {3.5, -inf, -1e308, -2.0, 0.0, inf, 1e-310, -1e-310, 2.0, std::numeric_limits<double>::max()}) v.push_back(x);
  }
  std::vector<double> want = v;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Sorted(v), want);
}

}  // namespace
}  // namespace ferry::monitoring::drift
