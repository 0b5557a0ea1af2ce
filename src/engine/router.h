#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/concurrency_limiter.h"
#include "engine/latency_histogram.h"
#include "engine/upstream_pool.h"

namespace grpc {
class Channel;
}

namespace ferry::engine {

struct DeploymentMetrics;     // engine_metrics.h
struct ReplicaErrorCounters;  // engine_metrics.h

// One replica as the gateway sees it. Shared by the supervisor (which flips `routable`)
// and the gateway (which counts requests and pools connections); lives until both let go.
// Thread-safety: the atomics and the pool are thread-safe; grpc_channel is set once,
// under grpc_channel_once; the rest is immutable.
struct ReplicaEndpoint {
  ReplicaEndpoint(std::string id, uint16_t port, uint16_t grpc_port = 0)
      : id(std::move(id)), port(port), grpc_port(grpc_port) {}
  const std::string id;     // "deployment/revision/index", for logs and errors
  const uint16_t port;      // the replica's REST port on 127.0.0.1
  const uint16_t grpc_port;  // its gRPC port on 127.0.0.1; 0: none
  std::atomic<bool> routable{false};  // ready and not draining
  std::atomic<int> outstanding{0};    // requests forwarded and not yet answered
  // Its upstream-failure counters (owned by EngineMetrics), set once when it is first
  // routed; null without metrics.
  std::atomic<const ReplicaErrorCounters*> errors{nullptr};
  UpstreamPool pool;                  // idle keep-alive connections to it
  // The gRPC gateway's channel to grpc_port (one HTTP/2 connection, multiplexed by every
  // gateway thread), made on first use; closes when the endpoint goes.
  std::once_flag grpc_channel_once;
  std::shared_ptr<grpc::Channel> grpc_channel;
};

// Load counters of one revision, read by the autoscaler loop.
struct RevisionLoad {
  std::atomic<uint64_t> arrivals{0};  // requests routed to the revision, ever
  std::atomic<bool> degraded{false};  // crash-looping: waiting for it to start is futile
  LatencyHistogram latency;           // routed to answered, of the requests its replicas answered
};

struct RevisionRoute {
  std::string name;
  int weight = 0;  // share of the deployment's traffic (static split)
  std::vector<std::shared_ptr<ReplicaEndpoint>> replicas;
  std::shared_ptr<RevisionLoad> load;
};

// Admission counters of a deployment at the gateway.
struct DeploymentLoad {
  std::atomic<int> in_flight{0};  // admitted at the gateway, waiting ones included
  std::atomic<int> waiting{0};    // held for want of a ready replica
  std::atomic<uint64_t> rejected{0};  // answered 503 for the concurrency limit
  // Requests at its replicas (gateway.max_concurrency per ready replica) and those
  // queued for a slot; configured by the control loop (ConfigureLimiter).
  ConcurrencyLimiter limiter;
};

struct DeploymentRoute {
  std::string name;
  std::vector<RevisionRoute> revisions;
  int min_replicas = 1;  // per revision; 0: may scale to zero (still "ready" at zero)
  int max_in_flight = 1000;
  int64_t request_timeout_ms = 60000;
  int64_t cold_start_timeout_ms = 30000;
  int max_concurrency = 0;  // per ready replica; 0: no limit (the limiter is not used)
  int max_queue = 0;
  int64_t queue_timeout_ms = 30000;
  std::shared_ptr<DeploymentLoad> load;
  std::shared_ptr<DeploymentMetrics> metrics;  // may be null (tests)

  // False when every revision with traffic is degraded: no replica is coming.
  bool CanStartReplica() const {
    for (const auto& r : revisions)
      if (r.weight > 0 && !(r.load && r.load->degraded.load(std::memory_order_relaxed))) return true;
    return false;
  }
};

// What the gateway routes by: model name -> deployment. Immutable once published.
struct RouteTable {
  std::unordered_map<std::string, std::shared_ptr<const DeploymentRoute>> by_model;
  std::vector<std::shared_ptr<const DeploymentRoute>> deployments;
};

// True when a replica of `d` takes requests now.
bool HasRoutableReplica(const DeploymentRoute& d);
// The gateways' readiness: every deployment whose minimum is above zero has a routable
// replica (one scaled to zero by design does not make the gateway unready).
bool GatewayReady(const RouteTable& table);
// Sets the limiter of `d` to max_concurrency slots per routable replica of a revision
// with traffic (what Router::Pick can choose), and its queue to max_queue.
void ConfigureLimiter(const DeploymentRoute& d);
// The gateways' answer when a request finds no slot and no room in the queue.
std::string QueueFullMessage(const DeploymentRoute& d);
// ... and when it waited in the queue until gateway.queue_timeout (or its deadline) passed.
std::string QueueTimeoutMessage(const DeploymentRoute& d, int64_t waited_ms, bool by_deadline);

// Holds the current RouteTable. The control loop publishes a new one when replicas come
// or go; request threads take a snapshot (a shared_ptr copy under a short lock) and
// decide on it, so a request never sees a half-updated table.
// Thread-safety: all methods are thread-safe.
class Router {
 public:
  Router();
  void Publish(std::shared_ptr<const RouteTable> table);
  std::shared_ptr<const RouteTable> Snapshot() const;

  // Picks a replica of `d` for one request: a revision by traffic weight among those
  // with a routable replica, then the less loaded of two random routable replicas (power
  // of two choices on outstanding requests). `avoid` (may be null) is skipped unless it is
  // the only routable replica left. Null when nothing is routable.
  static std::shared_ptr<ReplicaEndpoint> Pick(const DeploymentRoute& d, const ReplicaEndpoint* avoid,
                                               std::minstd_rand& rng, const RevisionRoute** revision = nullptr);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const RouteTable> table_;  // guarded by mu_
};

}  // namespace ferry::engine
