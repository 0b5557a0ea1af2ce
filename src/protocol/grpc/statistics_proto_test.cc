#include "protocol/grpc/statistics_proto.h"

#include <gtest/gtest.h>

namespace ferry::protocol {
namespace {

StatisticsSnapshot Snap(uint64_t n) {
  StatisticsSnapshot s;
  s.name = "m";
  s.version = "3";
  s.last_inference_ms = 1700000000000 + n;
  s.inference_count = n;
  s.execution_count = n / 2;
  s.success = {n, n * 1000};
  s.fail = {1, 7};
  s.queue = {n, n * 10};
  s.compute_input = {n / 2, n * 5};
  s.compute_infer = {n / 2, n * 500};
  s.compute_output = {n / 2, n * 6};
  s.cache_hit = {2, 22};
  s.cache_miss = {3, 33};
  s.batches = {{1, {n / 4, 1}, {n / 4, 2}, {n / 4, 3}}, {4, {1, 10}, {1, 20}, {1, 30}}};
  return s;
}

void ExpectEqual(const StatisticsSnapshot& a, const StatisticsSnapshot& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.last_inference_ms, b.last_inference_ms);
  EXPECT_EQ(a.inference_count, b.inference_count);
  EXPECT_EQ(a.execution_count, b.execution_count);
  for (auto [x, y] : {std::pair{a.success, b.success}, {a.fail, b.fail}, {a.queue, b.queue},
                      {a.compute_input, b.compute_input}, {a.compute_infer, b.compute_infer},
                      {a.compute_output, b.compute_output}, {a.cache_hit, b.cache_hit}, {a.cache_miss, b.cache_miss}}) {
    EXPECT_EQ(x.count, y.count);
    EXPECT_EQ(x.ns, y.ns);
  }
  ASSERT_EQ(a.batches.size(), b.batches.size());
  for (size_t i = 0; i < a.batches.size(); ++i) {
    EXPECT_EQ(a.batches[i].batch_size, b.batches[i].batch_size);
    EXPECT_EQ(a.batches[i].compute_infer.ns, b.batches[i].compute_infer.ns);
    EXPECT_EQ(a.batches[i].compute_output.count, b.batches[i].compute_output.count);
  }
}

TEST(StatisticsProtoTest, ToProtoThenBackGivesTheSameValues) {
  const std::vector<StatisticsSnapshot> in = {Snap(8), Snap(40)};
  inference::ModelStatisticsResponse proto;
  StatisticsToProto(in, &proto);
  ASSERT_EQ(proto.model_stats_size(), 2);
  EXPECT_EQ(proto.model_stats(1).inference_stats().queue().ns(), 400u);  // Triton's field, filled
  EXPECT_EQ(proto.model_stats(0).batch_stats(1).batch_size(), 4u);
  const auto out = StatisticsFromProto(proto);
  ASSERT_EQ(out.size(), 2u);
  ExpectEqual(out[0], in[0]);
  ExpectEqual(out[1], in[1]);
}

TEST(StatisticsProtoTest, TwoReplicasAnswersSumThroughTheMessages) {
  // What the engine's gRPC gateway does: decode each replica's answer, merge, encode.
  inference::ModelStatisticsResponse a, b, sum;
  StatisticsToProto({Snap(8)}, &a);
  StatisticsToProto({Snap(40)}, &b);
  StatisticsToProto(MergeStatistics({StatisticsFromProto(a), StatisticsFromProto(b)}), &sum);
  ASSERT_EQ(sum.model_stats_size(), 1);
  const auto& m = sum.model_stats(0);
  EXPECT_EQ(m.inference_count(), 48u);
  EXPECT_EQ(m.execution_count(), 24u);
  EXPECT_EQ(m.last_inference(), 1700000000040u);
  EXPECT_EQ(m.inference_stats().success().ns(), 48000u);
  EXPECT_EQ(m.inference_stats().fail().count(), 2u);
  ASSERT_EQ(m.batch_stats_size(), 2);
  EXPECT_EQ(m.batch_stats(0).compute_infer().count(), 12u);
}

}  // namespace
}  // namespace ferry::protocol
