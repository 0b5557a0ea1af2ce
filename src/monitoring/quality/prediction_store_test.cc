#include "monitoring/quality/prediction_store.h"

#include <gtest/gtest.h>

namespace ferry::monitoring::quality {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

StoredPrediction One(double v) {
  StoredPrediction p;
  p.rows = p.width = 1;
  p.values = {v};
  return p;
}

TEST(PredictionStoreTest, JoinsOnceThenCallsItADuplicate) {
  PredictionStore store(10, 60 * kSecond);
  store.Put("a", One(0.25), 0);
  ASSERT_NE(store.Peek("a", kSecond), nullptr);
  StoredPrediction got;
  EXPECT_EQ(store.Take("a", kSecond, &got), JoinResult::kJoined);
  EXPECT_EQ(got.values, std::vector<double>{0.25});
  EXPECT_EQ(store.pending(), 0u);
  EXPECT_EQ(store.Take("a", 2 * kSecond, &got), JoinResult::kDuplicate);
  EXPECT_EQ(store.Take("never", 2 * kSecond, &got), JoinResult::kUnknown);
}

TEST(PredictionStoreTest, ExpiresAfterTheTtlOnTheInjectedTime) {
  PredictionStore store(10, 60 * kSecond);
  store.Put("old", One(1), 0);
  store.Put("new", One(2), 30 * kSecond);
  EXPECT_NE(store.Peek("old", 60 * kSecond), nullptr);  // exactly the TTL: still there
  EXPECT_EQ(store.Peek("old", 61 * kSecond), nullptr);
  StoredPrediction got;
  EXPECT_EQ(store.Take("old", 61 * kSecond, &got), JoinResult::kExpired);
  EXPECT_EQ(store.expired(), 1u);
  EXPECT_EQ(store.Take("new", 61 * kSecond, &got), JoinResult::kJoined);
  EXPECT_EQ(got.values, std::vector<double>{2});
}

TEST(PredictionStoreTest, EvictsTheOldestWhenFullAndCountsIt) {
  PredictionStore store(3, 3600 * kSecond);
  for (int i = 0; i < 5; ++i) store.Put("r" + std::to_string(i), One(i), static_cast<uint64_t>(i));
  EXPECT_EQ(store.pending(), 3u);
  EXPECT_EQ(store.evicted(), 2u);
  StoredPrediction got;
  EXPECT_EQ(store.Take("r0", 10, &got), JoinResult::kEvicted);
  EXPECT_EQ(store.Take("r1", 10, &got), JoinResult::kEvicted);
  for (int i = 2; i < 5; ++i) EXPECT_EQ(store.Take("r" + std::to_string(i), 10, &got), JoinResult::kJoined) << i;
}

TEST(PredictionStoreTest, AReusedIdKeepsTheLatestAnswerAndItsPlaceInLine) {
  PredictionStore store(2, 3600 * kSecond);
  store.Put("a", One(1), 0);
  store.Put("b", One(2), 1);
  store.Put("a", One(3), 2);  // a is now the newest
  store.Put("c", One(4), 3);  // evicts b, the oldest
  StoredPrediction got;
  EXPECT_EQ(store.Take("b", 4, &got), JoinResult::kEvicted);
  EXPECT_EQ(store.Take("a", 4, &got), JoinResult::kJoined);
  EXPECT_EQ(got.values, std::vector<double>{3});
}

TEST(PredictionStoreTest, RemembersAtMostMaxPendingDepartedIds) {
  PredictionStore store(2, 3600 * kSecond);
  StoredPrediction got;
  for (int i = 0; i < 4; ++i) {
    store.Put("r" + std::to_string(i), One(i), static_cast<uint64_t>(i));
    ASSERT_EQ(store.Take("r" + std::to_string(i), 10, &got), JoinResult::kJoined);
  }
  EXPECT_EQ(store.Take("r0", 10, &got), JoinResult::kUnknown);  // forgotten
  EXPECT_EQ(store.Take("r3", 10, &got), JoinResult::kDuplicate);
}

}  // namespace
}  // namespace ferry::monitoring::quality
