#include "server/statistics.h"

#include <gtest/gtest.h>

#include <thread>

namespace ferry::server {
namespace {

TEST(StatisticsTest, CountsRequestsItemsAndBatchSizes) {
  VersionStatistics stats;
  stats.RecordSuccess({1, 10, 1, 100, 2, 200, 1000});
  stats.RecordSuccess({4, 20, 1, 300, 2, 400, 2000});
  stats.RecordSuccess({4, 30, 1, 500, 2, 600, 3000});
  stats.RecordFailure(50, 4000);
  StatisticsSnapshot s = stats.Snapshot("m", "1");
  EXPECT_EQ(s.inference_count, 9u);
  EXPECT_EQ(s.execution_count, 3u);
  EXPECT_EQ(s.success.count, 3u);
  EXPECT_EQ(s.success.ns, 1200u);
  EXPECT_EQ(s.queue.ns, 60u);
  EXPECT_EQ(s.compute_infer.ns, 900u);
  EXPECT_EQ(s.fail.count, 1u);
  EXPECT_EQ(s.last_inference_ms, 4000u);
  ASSERT_EQ(s.batches.size(), 2u);
  EXPECT_EQ(s.batches[1].batch_size, 4u);
  EXPECT_EQ(s.batches[1].compute_infer.count, 2u);
  EXPECT_EQ(s.batches[1].compute_infer.ns, 800u);
}

TEST(StatisticsTest, ConcurrentRecordingLosesNothing) {
  VersionStatistics stats;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) stats.RecordSuccess({2, 1, 1, 1, 1, 1, 1});
    });
  for (auto& t : threads) t.join();
  StatisticsSnapshot s = stats.Snapshot("m", "1");
  EXPECT_EQ(s.execution_count, 40000u);
  EXPECT_EQ(s.inference_count, 80000u);
  EXPECT_EQ(s.batches[0].compute_input.count, 40000u);
}

}  // namespace
}  // namespace ferry::server
