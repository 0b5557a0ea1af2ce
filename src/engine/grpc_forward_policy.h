#pragma once

#include <chrono>
#include <memory>
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

// A try at *ep that failed before any answer goes once more: picks the replica for it
// (another one when there is one), counts the retry (the replica's unavailable counter,
// the deployment's retries), logs it, and moves *ep and *revision to it. False when no
// replica is routable (nothing changed).
bool PickRetry(const DeploymentRoute& dep, std::shared_ptr<ReplicaEndpoint>* ep, const RevisionRoute** revision,
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

// A forwarded call's place at its deployment, the same in both transports' calls: the
// route table that keeps its deployment alive, its cold-start wait, its limiter slot.
// Thread-safety: one call's, used on its thread.
struct CallPlace {
  std::shared_ptr<const RouteTable> table;  // keeps dep alive
  const DeploymentRoute* dep = nullptr;     // set once admitted
  bool waiting = false;                     // counted in dep->load->waiting
  std::chrono::steady_clock::time_point wait_start;
  bool holds_slot = false;                  // a slot of dep->load->limiter

  enum class Step {
    kQueue,      // take a slot first (gateway.max_concurrency, and a replica is ready)
    kPicked,     // *ep and *revision are the replica (its revision's arrivals counted)
    kWait,       // no ready replica yet: look again in a while (counted as waiting)
    kNoReplica,  // none in time (gateway.cold_start_timeout, the deadline) or none coming
  };
  // One routing step of an admitted call. may_queue: no slot asked for yet.
  // deadline_passed: the call's deadline is over. *no_replica: kNoReplica's message.
  Step Next(const Router& router, bool may_queue, bool deadline_passed, std::shared_ptr<ReplicaEndpoint>* ep,
            const RevisionRoute** revision, std::string* no_replica);
  // Asks the limiter for a slot (Step::kQueue): kAcquired sets holds_slot; kQueueFull is
  // counted (its message: QueueFullMessage); kQueued: `waiter` gets Grant() later.
  ConcurrencyLimiter::Outcome AskSlot(const std::shared_ptr<ConcurrencyLimiter::Waiter>& waiter);
  // Gives back the slot, if it holds one.
  void ReleaseSlot();
  // Ends the cold-start wait, if it waits (routed: it found a replica; the wait is observed).
  void StopWaiting(bool routed);
  // A waiting call looks for replicas in the newest route table: the one it was admitted
  // with predates the replica being started for it.
  void Refresh(const Router& router);
};

// The answered call in the deployment's metrics (gRPC code, seconds since admission).
void RecordAnswer(const DeploymentRoute& dep, int grpc_code, std::chrono::steady_clock::time_point admitted);

}  // namespace ferry::engine::grpc_forward
