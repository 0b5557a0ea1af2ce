#include "engine/engine_metrics.h"

#include <gtest/gtest.h>

namespace ferry::engine {
namespace {

bool Has(const std::string& text, const std::string& line) { return text.find(line + "\n") != std::string::npos; }

TEST(EngineMetricsTest, CountsAnswersByClassAndReadsStateAtScrape) {
  EngineMetrics m;
  auto d = m.ForDeployment("dep");
  EXPECT_EQ(d, m.ForDeployment("dep")) << "one set of handles per deployment";
  d->Answered(200, 0.001);
  d->Answered(404, 0.001);
  d->Answered(503, 0.002);
  d->AnsweredGrpc(0, 0.001);       // OK
  d->AnsweredGrpc(3, 0.001);       // INVALID_ARGUMENT
  d->AnsweredGrpc(5, 0.001);       // NOT_FOUND
  d->AnsweredGrpc(14, 0.001);      // UNAVAILABLE
  d->retries->Increment();
  m.ScaleEvent("dep", "v1");
  uint64_t restarts = 2;
  m.SetCollectHook([&] {
    m.SetDeploymentLoad("dep", 3, 1, 2);
    m.SetRevision("dep", "v1", 2, 1, true, restarts);
  });
  std::string text = m.Serialize();
  EXPECT_TRUE(Has(text, R"(ferry_engine_requests_total{code="2xx",deployment="dep",protocol="rest"} 1)")) << text;
  EXPECT_TRUE(Has(text, R"(ferry_engine_requests_total{code="4xx",deployment="dep",protocol="rest"} 1)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_requests_total{code="5xx",deployment="dep",protocol="rest"} 1)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_requests_total{code="2xx",deployment="dep",protocol="grpc"} 1)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_requests_total{code="4xx",deployment="dep",protocol="grpc"} 2)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_requests_total{code="5xx",deployment="dep",protocol="grpc"} 1)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_upstream_retries_total{deployment="dep"} 1)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_request_duration_seconds_count{deployment="dep"} 7)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_in_flight{deployment="dep"} 3)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_waiting{deployment="dep"} 1)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_queue_depth{deployment="dep"} 2)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_rejected_total{deployment="dep",reason="queue_full"} 0)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_rejected_total{deployment="dep",reason="queue_timeout"} 0)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_replicas{deployment="dep",revision="v1",state="desired"} 2)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_replicas{deployment="dep",revision="v1",state="ready"} 1)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_revision_degraded{deployment="dep",revision="v1"} 1)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_replica_restarts_total{deployment="dep",revision="v1"} 2)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_scale_events_total{deployment="dep",revision="v1"} 1)"));
  restarts = 5;
  EXPECT_TRUE(Has(m.Serialize(), R"(ferry_engine_replica_restarts_total{deployment="dep",revision="v1"} 5)"))
      << "the counter follows the supervisor's total";
}

TEST(EngineMetricsTest, ReplicaErrorCountersExistAtZeroAndAreStable) {
  EngineMetrics m;
  const ReplicaErrorCounters* c = m.ForReplica("dep", "v1", "0");
  EXPECT_EQ(c, m.ForReplica("dep", "v1", "0"));
  EXPECT_NE(c, m.ForReplica("dep", "v1", "1"));
  c->unavailable->Increment();
  std::string text = m.Serialize();
  EXPECT_TRUE(Has(text, R"(ferry_engine_upstream_errors_total{deployment="dep",reason="unavailable",replica="0",revision="v1"} 1)"))
      << text;
  EXPECT_TRUE(Has(text, R"(ferry_engine_upstream_errors_total{deployment="dep",reason="timeout",replica="0",revision="v1"} 0)"));
  EXPECT_TRUE(Has(text, R"(ferry_engine_upstream_errors_total{deployment="dep",reason="timeout",replica="1",revision="v1"} 0)"));
}

}  // namespace
}  // namespace ferry::engine
