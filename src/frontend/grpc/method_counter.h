#pragma once

#include <grpcpp/support/status.h>
#include <prometheus/counter.h>

#include <array>
#include <atomic>
#include <string>

#include "frontend/grpc/call_count_sink.h"
#include "monitoring/metrics.h"

namespace ferry::frontend::grpc {

// The finished calls of one gRPC method by status code (ferry_grpc_requests_total).
// Each call counts itself where it sends its status, so no interceptor runs: gRPC's
// interception hooks cost about 5-9% of a ModelInfer call's instructions. A code's
// counter is looked up in the metric family once, on its first use, and kept.
// Thread-safety: Count is thread-safe. The metrics must outlive the counter.
class MethodCounter final : public CallCountSink {
 public:
  // `method` is the full name, e.g. "/inference.GRPCInferenceService/ModelInfer".
  MethodCounter(monitoring::Metrics* metrics, std::string method) : metrics_(metrics), method_(std::move(method)) {}
  MethodCounter(const MethodCounter&) = delete;
  MethodCounter& operator=(const MethodCounter&) = delete;

  void Count(::grpc::StatusCode code) override;
  const std::string& method() const { return method_; }

 private:
  static constexpr size_t kCodes = 17;  // OK (0) .. UNAUTHENTICATED (16)
  monitoring::Metrics* metrics_;
  const std::string method_;
  std::array<std::atomic<prometheus::Counter*>, kCodes> by_code_{};
};

// gRPC's name of a status code ("OK", "NOT_FOUND", ...); "UNKNOWN" for a value outside
// the protocol's 17.
const char* StatusCodeName(::grpc::StatusCode code);

}  // namespace ferry::frontend::grpc
