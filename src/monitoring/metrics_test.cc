#include "monitoring/metrics.h"

#include <gtest/gtest.h>

namespace ferry::monitoring {
namespace {

TEST(MetricsTest, ExportsPerVersionCountersHistogramsAndProcessMetrics) {
  Metrics metrics;
  auto m = metrics.ForVersion("add_sub", "1");
  m->For(Frontend::kHttp).success->Increment();
  m->For(Frontend::kGrpc).request->Observe(0.002);
  m->Failure(StatusCode::kInvalidArgument, Frontend::kGrpc);
  metrics.GrpcCalls("/inference.GRPCInferenceService/ModelInfer", "OK").Increment();
  metrics.ModelLoaded("add_sub", true, 0.5);
  std::string text = metrics.Serialize();
  EXPECT_NE(text.find(R"(ferry_inference_requests_total{model="add_sub",protocol="http",version="1"} 1)"),
            std::string::npos) << text;
  EXPECT_NE(text.find(R"(ferry_inference_requests_total{model="add_sub",protocol="grpc",version="1"} 0)"),
            std::string::npos) << text;
  EXPECT_NE(
      text.find(R"(ferry_inference_failures_total{model="add_sub",protocol="grpc",reason="invalid_argument",version="1"} 1)"),
      std::string::npos) << text;
  EXPECT_NE(text.find(R"(ferry_request_duration_seconds_bucket{model="add_sub",protocol="grpc",version="1",le="0.0025"} 1)"),
            std::string::npos) << text;
  EXPECT_NE(text.find(R"(ferry_grpc_requests_total{code="OK",method="/inference.GRPCInferenceService/ModelInfer"} 1)"),
            std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE ferry_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find(R"(ferry_model_loads_total{model="add_sub",result="success"} 1)"), std::string::npos);
  EXPECT_NE(text.find("process_resident_memory_bytes"), std::string::npos);
  EXPECT_EQ(text.find("process_resident_memory_bytes 0\n"), std::string::npos);
}

}  // namespace
}  // namespace ferry::monitoring
