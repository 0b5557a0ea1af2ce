#pragma once

#include <chrono>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/grpc_wire.h"
#include "engine/router.h"

// What the gRPC gateway's two transports (grpc++: grpc_forward.cc; native:
// native_forward.cc) decide alike about a forwarded call: which methods are forwarded,
// which metadata crosses the hop, admission, and the words and counters of its failures.
// Thread-safety: pure functions, or atomics and metrics that are thread-safe.
namespace ferry::engine::grpc_forward {

enum class Method { kUnknown, kInfer, kStreamInfer, kMetadata, kReady, kConfig, kStatistics };

struct MethodInfo {
  std::string_view path;
  Method method;
  ModelTargetFields fields;
};

// The forwarded method of full path `path`, or null.
const MethodInfo* FindMethod(std::string_view path);

// The gateway threads' random source (Router::Pick's power of two choices).
std::minstd_rand& Rng();

// Metadata that crosses the hop: not HTTP/2 pseudo-headers and framing, gRPC's own keys
// (deadline, encoding, status), nor the user agent, which each side sets for itself.
bool Forwardable(std::string_view key);

// `ferry serve`'s words for a model it does not have (NOT_FOUND).
std::string UnknownModel(const std::string& name);

// Admission against gateway.max_in_flight: counts the call in dep.load->in_flight and
// returns true; or counts the rejection (and its RESOURCE_EXHAUSTED answer) and returns
// false, with OverLimit's message for the client.
bool AdmitInFlight(const DeploymentRoute& dep);
std::string OverLimit(const DeploymentRoute& dep);

// The UNAVAILABLE answer of a call that found no ready replica in time.
std::string NoReadyReplica(const DeploymentRoute& dep, bool degraded, int64_t waited_ms);

// A failed try at `ep` that goes once more, to `next`: counts it (the replica's
// unavailable counter, the deployment's retries) and logs it.
void CountRetry(const DeploymentRoute& dep, const ReplicaEndpoint& ep, const ReplicaEndpoint& next,
                std::string_view error);
// A call that failed at `ep` for good (after the retry, or by gateway.request_timeout).
void CountUpstreamError(const ReplicaEndpoint& ep, bool timeout);
std::string ReplicaFailed(const DeploymentRoute& dep, const ReplicaEndpoint& ep, std::string_view error);
std::string ReplicaTimedOut(const DeploymentRoute& dep, const ReplicaEndpoint& ep);

// ModelStatistics through the gateway: one replica's answer to the client's request...
struct StatisticsAnswer {
  const ReplicaEndpoint* ep = nullptr;
  int code = 0;           // its gRPC status
  std::string message;
  std::string bytes;      // its ModelStatisticsResponse, when OK
};
// ... and the gateway's answer from all of them: OK with their sum (protocol::
// MergeStatistics) serialized into `out`; a replica's own error as it is (`own` is then
// its index); UNAVAILABLE naming a replica that did not answer (UNAVAILABLE,
// DEADLINE_EXCEEDED) or answered something that is not a ModelStatisticsResponse.
struct StatisticsSum {
  int code = 0;
  std::string message;
  int own = -1;
};
StatisticsSum SumStatistics(std::string_view deployment, const std::vector<StatisticsAnswer>& answers, std::string* out);

// The answered call in the deployment's metrics (gRPC code, seconds since admission).
void RecordAnswer(const DeploymentRoute& dep, int grpc_code, std::chrono::steady_clock::time_point admitted);

}  // namespace ferry::engine::grpc_forward
