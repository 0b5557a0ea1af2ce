#include "protocol/model_statistics.h"

#include <gtest/gtest.h>

namespace ferry::protocol {
namespace {

StatisticsSnapshot Snap(std::string name, std::string version, uint64_t n, uint64_t last) {
  StatisticsSnapshot s;
  s.name = std::move(name);
  s.version = std::move(version);
  s.last_inference_ms = last;
  s.inference_count = n;
  s.execution_count = n / 2;
  s.success = {n, n * 1000};
  s.queue = {n, n * 10};
  s.compute_infer = {n / 2, n * 500};
  s.batches = {{1, {n / 4, 1}, {n / 4, 2}, {n / 4, 3}}, {4, {1, 10}, {1, 20}, {1, 30}}};
  return s;
}

TEST(ModelStatisticsTest, EncodeThenDecodeGivesTheSameValues) {
  std::vector<StatisticsSnapshot> in = {Snap("a", "1", 8, 1700000000000), Snap("b\"q", "2", 0, 0)};
  in[0].fail = {3, 33};
  in[0].cache_hit = {2, 22};
  in[0].cache_miss = {6, 66};
  auto out = DecodeStatisticsJson(EncodeStatisticsJson(in));
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->size(), 2u);
  const auto& a = (*out)[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.last_inference_ms, 1700000000000u);
  EXPECT_EQ(a.inference_count, 8u);
  EXPECT_EQ(a.fail.count, 3u);
  EXPECT_EQ(a.fail.ns, 33u);
  EXPECT_EQ(a.cache_miss.ns, 66u);
  ASSERT_EQ(a.batches.size(), 2u);
  EXPECT_EQ(a.batches[1].batch_size, 4u);
  EXPECT_EQ(a.batches[1].compute_output.ns, 30u);
  EXPECT_EQ((*out)[1].name, "b\"q");
}

TEST(ModelStatisticsTest, MergeSumsReplicasPerVersionAndKeepsTheLatestInference) {
  auto merged = MergeStatistics({{Snap("m", "1", 8, 100), Snap("m", "2", 4, 50)},
                                 {Snap("m", "1", 12, 300)},
                                 {Snap("a", "1", 2, 7)}});
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0].name, "a");  // ordered by name, then version
  const auto& m1 = merged[1];
  EXPECT_EQ(m1.version, "1");
  EXPECT_EQ(m1.inference_count, 20u);
  EXPECT_EQ(m1.execution_count, 10u);
  EXPECT_EQ(m1.success.count, 20u);
  EXPECT_EQ(m1.success.ns, 20000u);
  EXPECT_EQ(m1.queue.ns, 200u);
  EXPECT_EQ(m1.last_inference_ms, 300u);
  ASSERT_EQ(m1.batches.size(), 2u);
  EXPECT_EQ(m1.batches[0].batch_size, 1u);
  EXPECT_EQ(m1.batches[0].compute_input.count, 2u + 3u);
  EXPECT_EQ(m1.batches[1].compute_infer.ns, 40u);
  EXPECT_EQ(merged[2].inference_count, 4u);  // m v2 from one replica only
}

TEST(ModelStatisticsTest, DecodeErrorsNameTheField) {
  auto bad = [](std::string_view body) { return DecodeStatisticsJson(body).status().message(); };
  EXPECT_NE(bad("nope").find("body: not JSON"), std::string::npos);
  EXPECT_NE(bad("{}").find("model_stats: missing"), std::string::npos);
  EXPECT_NE(bad(R"({"model_stats":[{"name":"m"}]})").find("model_stats[0].version"), std::string::npos);
  EXPECT_NE(bad(R"({"model_stats":[{"name":"m","version":"1","inference_stats":{"queue":{"ns":-1}}}]})")
                .find("model_stats[0].inference_stats.queue.ns: not an unsigned integer"),
            std::string::npos);
  EXPECT_NE(bad(R"({"model_stats":[{"name":"m","version":"1","batch_stats":[{"batch_size":"x"}]}]})")
                .find("model_stats[0].batch_stats[0].batch_size"),
            std::string::npos);
}

}  // namespace
}  // namespace ferry::protocol
