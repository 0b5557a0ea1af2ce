#include "scheduler/batch_queue.h"

#include <gtest/gtest.h>

#include "repository/model_config.h"

namespace ferry::scheduler {
namespace {

constexpr uint64_t kUs = 1000;

inference::ModelConfig Config(const std::string& batching) {
  auto c = repository::ParseTritonConfig("name: \"m\" max_batch_size: 8 dynamic_batching { " + batching + " }");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

// A job with `rows` rows of one input "x" whose non-batch shape is `width`.
Job MakeJob(int id, int64_t rows, int64_t width = 4, uint32_t priority = 0, uint64_t timeout_us = 0) {
  Job j;
  Tensor t;
  t.name = "x";
  t.datatype = DataType::kFp32;
  t.shape = {rows, width};
  j.inputs.push_back(t);
  j.outputs = {"y"};
  j.batch_size = rows;
  j.priority = priority;
  j.timeout_us = timeout_us;
  j.enqueue_ns = static_cast<uint64_t>(id);  // overwritten by Enqueue; ids travel in done
  j.done = [id](Result<std::vector<Tensor>>, const JobReport&) { (void)id; };
  return j;
}

// Ids by the order of rows: tests give each job a distinct width or rows pattern, so
// batches are identified by their jobs' batch sizes and widths.
std::vector<int64_t> Rows(const std::vector<Job>& jobs) {
  std::vector<int64_t> r;
  for (const auto& j : jobs) r.push_back(j.batch_size);
  return r;
}

TEST(BatchQueueTest, WaitsForTheDelayThenSendsWhatItHas) {
  BatchQueue q(Config("max_queue_delay_microseconds: 100"));
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1), 1000).ok());
  ASSERT_TRUE(q.Enqueue(MakeJob(2, 2), 1010).ok());
  auto d = q.Next(1050);
  EXPECT_TRUE(d.batch.empty());
  ASSERT_TRUE(d.wake_at.has_value());
  EXPECT_EQ(*d.wake_at, 1000 + 100 * kUs);
  d = q.Next(1000 + 100 * kUs);
  EXPECT_EQ(Rows(d.batch), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(q.empty());
}

TEST(BatchQueueTest, DispatchesAtOnceWhenFullAndNeverExceedsMaxBatch) {
  BatchQueue q(Config("max_queue_delay_microseconds: 1000000"));
  for (int64_t rows : {3, 3, 3}) ASSERT_TRUE(q.Enqueue(MakeJob(0, rows), 0).ok());
  auto d = q.Next(1);  // 9 rows queued, 8 fit: 3+3 go now, the third cannot join
  EXPECT_EQ(Rows(d.batch), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(q.size(), 1u);
  d = q.Next(2);
  EXPECT_TRUE(d.batch.empty());  // alone, it waits for company or the delay
}

TEST(BatchQueueTest, PreferredSizesCutTheBatch) {
  BatchQueue q(Config("preferred_batch_size: [ 2, 4 ] max_queue_delay_microseconds: 1000000"));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(q.Enqueue(MakeJob(i, 1), 0).ok());
  auto d = q.Next(1);  // 5 rows >= largest preferred (4): send 4
  EXPECT_EQ(d.batch.size(), 4u);
  EXPECT_EQ(q.size(), 1u);
}

TEST(BatchQueueTest, ZeroDelaySendsImmediately) {
  BatchQueue q(Config(""));
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1), 5).ok());
  EXPECT_EQ(q.Next(5).batch.size(), 1u);
}

TEST(BatchQueueTest, ShapeMismatchedRequestsAreKeptApart) {
  BatchQueue q(Config(""));
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1, 4), 0).ok());
  ASSERT_TRUE(q.Enqueue(MakeJob(2, 1, 5), 0).ok());
  ASSERT_TRUE(q.Enqueue(MakeJob(3, 2, 4), 0).ok());
  auto d = q.Next(0);
  ASSERT_EQ(d.batch.size(), 2u);
  EXPECT_EQ(d.batch[0].inputs[0].shape[1], 4);
  EXPECT_EQ(d.batch[1].inputs[0].shape[1], 4);
  d = q.Next(0);
  ASSERT_EQ(d.batch.size(), 1u);
  EXPECT_EQ(d.batch[0].inputs[0].shape[1], 5);
}

TEST(BatchQueueTest, ABatchAcrossLevelsLeavesTheRestQueuedInOrder) {
  BatchQueue q(Config("priority_levels: 2 default_priority_level: 2"));
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1, 4), 0).ok());      // level 2
  ASSERT_TRUE(q.Enqueue(MakeJob(2, 1, 5), 0).ok());      // level 2, other shape: stays
  ASSERT_TRUE(q.Enqueue(MakeJob(3, 2, 4), 0).ok());      // level 2
  Job other_output = MakeJob(4, 1, 4);
  other_output.outputs = {"z"};                          // other outputs: stays
  ASSERT_TRUE(q.Enqueue(std::move(other_output), 0).ok());
  ASSERT_TRUE(q.Enqueue(MakeJob(5, 3, 4), 0).ok());      // level 2
  ASSERT_TRUE(q.Enqueue(MakeJob(6, 1, 6), 0).ok());      // level 2, other shape: stays
  ASSERT_TRUE(q.Enqueue(MakeJob(7, 2, 4, 1), 0).ok());   // level 1: heads the batch
  auto d = q.Next(0);  // zero delay: runs what is compatible with the head
  EXPECT_EQ(Rows(d.batch), (std::vector<int64_t>{2, 1, 2, 3}));
  EXPECT_EQ(q.size(), 3u);
  d = q.Next(0);
  ASSERT_EQ(d.batch.size(), 1u);
  EXPECT_EQ(d.batch[0].inputs[0].shape[1], 5);
  d = q.Next(0);
  ASSERT_EQ(d.batch.size(), 1u);
  EXPECT_EQ(d.batch[0].outputs, (std::vector<std::string>{"z"}));
  d = q.Next(0);
  ASSERT_EQ(d.batch.size(), 1u);
  EXPECT_EQ(d.batch[0].inputs[0].shape[1], 6);
  EXPECT_TRUE(q.empty());
}

TEST(BatchQueueTest, HigherPriorityOvertakes) {
  BatchQueue q(Config("priority_levels: 2 default_priority_level: 2"));
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1, 4), 0).ok());        // default level 2
  ASSERT_TRUE(q.Enqueue(MakeJob(2, 1, 5, 1), 10).ok());    // level 1, later, other shape
  auto d = q.Next(20);
  ASSERT_EQ(d.batch.size(), 1u);
  EXPECT_EQ(d.batch[0].inputs[0].shape[1], 5);  // the level-1 request goes first
  EXPECT_EQ(q.Enqueue(MakeJob(3, 1, 4, 3), 0).code(), StatusCode::kInvalidArgument);
}

TEST(BatchQueueTest, FullLevelIsOverloaded) {
  BatchQueue q(Config("default_queue_policy { max_queue_size: 2 }"));
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1), 0).ok());
  ASSERT_TRUE(q.Enqueue(MakeJob(2, 1), 0).ok());
  Status s = q.Enqueue(MakeJob(3, 1), 0);
  EXPECT_EQ(s.code(), StatusCode::kOverloaded);
  EXPECT_NE(s.message().find("max_queue_size 2"), std::string::npos);
}

TEST(BatchQueueTest, TimeoutRejectExpiresQueuedRequests) {
  BatchQueue q(Config("max_queue_delay_microseconds: 1000 "
                      "default_queue_policy { default_timeout_microseconds: 100 timeout_action: REJECT }"));
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1), 0).ok());
  auto d = q.Next(50 * kUs);
  EXPECT_TRUE(d.batch.empty());
  EXPECT_EQ(*d.wake_at, 100 * kUs);  // wakes for the deadline before the batch delay
  d = q.Next(100 * kUs);
  EXPECT_EQ(d.expired.size(), 1u);
  EXPECT_TRUE(d.batch.empty());
  EXPECT_TRUE(q.empty());
}

TEST(BatchQueueTest, TimeoutDelayMovesBehindOthers) {
  BatchQueue q(Config("default_queue_policy { default_timeout_microseconds: 100 timeout_action: DELAY }"));
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1, 4), 0).ok());
  auto d = q.Next(200 * kUs);  // expired with DELAY: still served (nothing else queued)
  EXPECT_TRUE(d.expired.empty());
  EXPECT_EQ(d.batch.size(), 1u);

  ASSERT_TRUE(q.Enqueue(MakeJob(2, 1, 4), 0).ok());
  (void)q.Next(150 * kUs - 1);  // not yet expired... dispatched at once (zero delay)
  ASSERT_TRUE(q.Enqueue(MakeJob(3, 1, 5), 0).ok());
  ASSERT_TRUE(q.Enqueue(MakeJob(4, 1, 6), 150 * kUs).ok());
  d = q.Next(150 * kUs);  // job 3 expired at 100us -> delayed; job 4 is served first
  ASSERT_EQ(d.batch.size(), 1u);
  EXPECT_EQ(d.batch[0].inputs[0].shape[1], 6);
  d = q.Next(150 * kUs);
  ASSERT_EQ(d.batch.size(), 1u);
  EXPECT_EQ(d.batch[0].inputs[0].shape[1], 5);
}

TEST(BatchQueueTest, RequestTimeoutOnlyShortensWhenOverrideAllowed) {
  BatchQueue strict(Config("max_queue_delay_microseconds: 1000 default_queue_policy { default_timeout_microseconds: 500 }"));
  ASSERT_TRUE(strict.Enqueue(MakeJob(1, 1, 4, 0, 100), 0).ok());
  EXPECT_TRUE(strict.Next(200 * kUs).expired.empty());  // override ignored: 500us applies
  BatchQueue open(Config("max_queue_delay_microseconds: 1000 "
                         "default_queue_policy { default_timeout_microseconds: 500 allow_timeout_override: true }"));
  ASSERT_TRUE(open.Enqueue(MakeJob(1, 1, 4, 0, 100), 0).ok());
  EXPECT_EQ(open.Next(200 * kUs).expired.size(), 1u);
}

TEST(BatchQueueTest, AnArrivalWakesAWaitingWorkerOnlyWhenItMayChangeTheDecision) {
  BatchQueue q(Config("max_queue_delay_microseconds: 500"));
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 3), 0).ok());
  const uint64_t wake = *q.Next(1).wake_at;  // the worker waits until the delay ends
  ASSERT_TRUE(q.Enqueue(MakeJob(2, 3), 10).ok());
  EXPECT_FALSE(q.ArrivalNeedsDecision(wake));  // 6 of 8 rows: the timer decides
  ASSERT_TRUE(q.Enqueue(MakeJob(3, 3), 20).ok());
  EXPECT_TRUE(q.ArrivalNeedsDecision(wake));  // 9 rows: a batch is full now
  EXPECT_EQ(Rows(q.Next(21).batch), (std::vector<int64_t>{3, 3}));
  EXPECT_FALSE(q.ArrivalNeedsDecision(*q.Next(22).wake_at));  // 3 rows left: counted down
  q.TakeAll();
  ASSERT_TRUE(q.Enqueue(MakeJob(4, 1), 30).ok());
  EXPECT_FALSE(q.ArrivalNeedsDecision(*q.Next(31).wake_at));  // TakeAll forgot the rows

  // A largest preferred size is full too.
  BatchQueue preferred(Config("preferred_batch_size: [ 2 ] max_queue_delay_microseconds: 500"));
  ASSERT_TRUE(preferred.Enqueue(MakeJob(1, 1), 0).ok());
  const uint64_t pw = *preferred.Next(1).wake_at;
  ASSERT_TRUE(preferred.Enqueue(MakeJob(2, 1), 5).ok());
  EXPECT_TRUE(preferred.ArrivalNeedsDecision(pw));

  // A request whose deadline comes before the planned wake-up must be looked at.
  BatchQueue timed(Config("max_queue_delay_microseconds: 1000 "
                          "default_queue_policy { default_timeout_microseconds: 2000 allow_timeout_override: true }"));
  ASSERT_TRUE(timed.Enqueue(MakeJob(1, 1), 0).ok());
  const uint64_t tw = *timed.Next(1).wake_at;  // 1000 us
  ASSERT_TRUE(timed.Enqueue(MakeJob(2, 1), 10 * kUs).ok());  // deadline 2010 us: later
  EXPECT_FALSE(timed.ArrivalNeedsDecision(tw));
  ASSERT_TRUE(timed.Enqueue(MakeJob(3, 1, 4, 0, 100), 20 * kUs).ok());  // its own 100 us: 120 us
  EXPECT_TRUE(timed.ArrivalNeedsDecision(tw));
  // Expired rows leave the count.
  auto d = timed.Next(130 * kUs);
  EXPECT_EQ(d.expired.size(), 1u);
}

}  // namespace
}  // namespace ferry::scheduler

namespace ferry::scheduler {
namespace {

inference::ModelConfig TargetConfig() {
  auto c = repository::ParseTritonConfig(
      "name: \"m\" max_batch_size: 8 dynamic_batching { } "
      "parameters { key: \"latency_target_microseconds\" value: { string_value: \"10000\" } }");
  EXPECT_TRUE(c.ok());
  return *c;
}

TEST(LatencyTargetTest, EveryArrivalIsLookedAt) {
  BatchQueue q(TargetConfig());
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1), 0).ok());
  EXPECT_TRUE(q.ArrivalNeedsDecision(UINT64_MAX));  // the decision follows the arrival rate
}

TEST(LatencyTargetTest, BusyTrafficWaitsToFillBatches) {
  BatchQueue q(TargetConfig());
  q.ObserveExecution(1, 1000 * kUs);  // 1 ms alone
  q.ObserveExecution(2, 1100 * kUs);  // 1.1 ms for two: batching pays
  // Requests arrive every 100 us.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(q.Enqueue(MakeJob(i, 1), i * 100 * kUs).ok());
  (void)q.Next(200 * kUs);  // 3 rows... the first decision: wait for the 4th
  auto d = q.Next(200 * kUs);
  EXPECT_TRUE(d.batch.empty());
  ASSERT_TRUE(d.wake_at.has_value());
  EXPECT_NEAR(static_cast<double>(*d.wake_at), 300.0 * kUs, 20.0 * kUs);  // when the next one is due
}

TEST(LatencyTargetTest, WhenTheArrivalsStopTheBatchGoesWithoutWaitingForTheTarget) {
  BatchQueue q(TargetConfig());
  q.ObserveExecution(1, 1000 * kUs);
  q.ObserveExecution(2, 1100 * kUs);
  q.ObserveExecution(4, 1200 * kUs);
  // Four clients in a closed loop: their requests come 100 us apart, then no more (all
  // four wait in this batch) although bigger batches would pay and the target allows it.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(q.Enqueue(MakeJob(i, 1), i * 100 * kUs).ok());
  auto wait = q.Next(300 * kUs);
  EXPECT_TRUE(wait.batch.empty());  // right after the 4th the 5th is still expected
  ASSERT_TRUE(wait.wake_at.has_value());
  EXPECT_TRUE(q.Next(450 * kUs).batch.empty());  // 1.5 gaps of silence: still waiting
  auto go = q.Next(520 * kUs);                   // over 2 gaps: the arrivals stopped
  EXPECT_EQ(go.batch.size(), 4u);                // long before the 10 ms target
}

TEST(LatencyTargetTest, SparseTrafficRunsAtOnce) {
  BatchQueue q(TargetConfig());
  q.ObserveExecution(1, 1000 * kUs);
  q.ObserveExecution(2, 1100 * kUs);
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1), 0).ok());
  EXPECT_EQ(q.Next(0).batch.size(), 1u);  // no arrival rate yet: run
  // Arrivals 20 ms apart: waiting for the next would break the 10 ms target.
  ASSERT_TRUE(q.Enqueue(MakeJob(2, 1), 20000 * kUs).ok());
  EXPECT_EQ(q.Next(20000 * kUs).batch.size(), 1u);
}

TEST(LatencyTargetTest, ArrivalsSlowerThanAnExecutionRunAtOnce) {
  BatchQueue q(TargetConfig());
  q.ObserveExecution(1, 100 * kUs);  // 0.1 ms alone
  q.ObserveExecution(2, 110 * kUs);
  // One client in a closed loop: a request every 0.5 ms, slower than an execution.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(q.Enqueue(MakeJob(i, 1), i * 500 * kUs).ok());
    EXPECT_EQ(q.Next(i * 500 * kUs).batch.size(), 1u) << i;
  }
}

TEST(LatencyTargetTest, NoWaitWhenBiggerBatchesDoNotPay) {
  BatchQueue q(TargetConfig());
  q.ObserveExecution(1, 1000 * kUs);
  q.ObserveExecution(2, 2000 * kUs);  // twice the rows, twice the time
  ASSERT_TRUE(q.Enqueue(MakeJob(1, 1), 0).ok());
  ASSERT_TRUE(q.Enqueue(MakeJob(2, 1), 100 * kUs).ok());
  auto d = q.Next(100 * kUs);
  EXPECT_EQ(d.batch.size(), 2u);  // waiting for a third would not help throughput... dispatch
}

}  // namespace
}  // namespace ferry::scheduler
