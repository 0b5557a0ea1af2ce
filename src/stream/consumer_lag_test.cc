#include "stream/consumer_lag.h"

#include <gtest/gtest.h>

namespace ferry::stream {
namespace {

// Trimmed from a librdkafka 2.0.2 consumer's statistics (STATISTICS.md layout): two
// assigned partitions, one unassigned (-1 lag), and the internal partition -1.
constexpr const char* kStats = R"({
  "name": "ferry-stream#consumer-1", "type": "consumer", "ts": 5016483227792,
  "brokers": {"127.0.0.1:9092/1": {"name": "127.0.0.1:9092/1", "state": "UP"}},
  "topics": {
    "orders": {
      "topic": "orders", "age": 5003,
      "partitions": {
        "0": {"partition": 0, "hi_offset": 120, "ls_offset": 120, "committed_offset": 100,
              "consumer_lag": 20, "consumer_lag_stored": 15},
        "1": {"partition": 1, "hi_offset": 7, "committed_offset": 7, "consumer_lag": 0},
        "5": {"partition": 5, "hi_offset": 50, "committed_offset": 0, "stored_offset": 48,
              "consumer_lag": 50, "consumer_lag_stored": 2},
        "2": {"partition": 2, "hi_offset": 9, "committed_offset": -1001, "consumer_lag": -1},
        "-1": {"partition": -1, "consumer_lag": -1}
      }
    },
    "clicks": {"topic": "clicks", "partitions": {"3": {"partition": 3, "consumer_lag": 4}}}
  }
})";

TEST(ConsumerLagTest, ReadsAssignedPartitionsSorted) {
  auto lags = ParseConsumerLag(kStats);
  ASSERT_TRUE(lags.ok()) << lags.status().message();
  // Partition 5: committed in a transaction, so only the stored offset is current.
  std::vector<PartitionLag> want = {{"clicks", 3, 4}, {"orders", 0, 15}, {"orders", 1, 0}, {"orders", 5, 2}};
  EXPECT_EQ(*lags, want);
}

TEST(ConsumerLagTest, NoTopicsIsNoLag) {
  auto lags = ParseConsumerLag(R"({"name": "p", "type": "producer"})");
  ASSERT_TRUE(lags.ok());
  EXPECT_TRUE(lags->empty());
}

TEST(ConsumerLagTest, RefusesWhatIsNotStatistics) {
  EXPECT_FALSE(ParseConsumerLag("not json").ok());
  EXPECT_FALSE(ParseConsumerLag("[1, 2]").ok());
  EXPECT_FALSE(ParseConsumerLag(R"({"topics": 3})").ok());
}

TEST(ConsumerLagTest, SkipsMalformedPartitions) {
  auto lags = ParseConsumerLag(
      R"({"topics": {"t": {"partitions": {"x": {"consumer_lag": 3}, "1": {"consumer_lag": "3"}, "2": 5,
          "4": {"consumer_lag": 8}}}}})");
  ASSERT_TRUE(lags.ok());
  std::vector<PartitionLag> want = {{"t", 4, 8}};
  EXPECT_EQ(*lags, want);
}

}  // namespace
}  // namespace ferry::stream
