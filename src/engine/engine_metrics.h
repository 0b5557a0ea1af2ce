#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace ferry::engine {

// The gateway's metric handles of one deployment, resolved once so the request path
// only touches atomics (and a histogram's lock).
// Thread-safety: every member is safe to update from any thread.
struct DeploymentMetrics {
  prometheus::Counter* answered_2xx = nullptr;  // REST; 1xx-3xx too
  prometheus::Counter* answered_4xx = nullptr;
  prometheus::Counter* answered_5xx = nullptr;
  prometheus::Counter* grpc_answered_2xx = nullptr;  // gRPC, by the class of the code
  prometheus::Counter* grpc_answered_4xx = nullptr;
  prometheus::Counter* grpc_answered_5xx = nullptr;
  prometheus::Counter* retries = nullptr;
  prometheus::Counter* rejected_limit = nullptr;       // over gateway.max_in_flight
  prometheus::Counter* rejected_no_replica = nullptr;  // none ready within cold_start_timeout
  prometheus::Counter* rejected_queue_full = nullptr;     // over max_concurrency, gateway.max_queue waiting
  prometheus::Counter* rejected_queue_timeout = nullptr;  // queued for gateway.queue_timeout (or the deadline)
  prometheus::Histogram* queue_wait = nullptr;            // queued for a slot, then forwarded
  prometheus::Histogram* latency = nullptr;            // admission to answer, seconds
  prometheus::Histogram* cold_start_wait = nullptr;    // waited for a replica, then routed

  // A REST answer.
  void Answered(int http_status, double seconds);
  // A gRPC answer: OK counts as 2xx; the codes of a client's mistake (CANCELLED,
  // INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION,
  // OUT_OF_RANGE, UNAUTHENTICATED) as 4xx; the others as 5xx.
  void AnsweredGrpc(int grpc_code, double seconds);
};

// One replica's upstream failures as the gateways saw them (REST and gRPC together):
// `unavailable` (connection refused, reset or closed before the answer; gRPC
// UNAVAILABLE) and `timeout` (no answer within gateway.request_timeout). Retried
// failures count too: each is a replica failing a request.
struct ReplicaErrorCounters {
  prometheus::Counter* unavailable = nullptr;
  prometheus::Counter* timeout = nullptr;
};

// The engine's Prometheus metrics (names in docs/metrics.md, prefix ferry_engine_),
// served on its metrics port.
// Thread-safety: all methods are thread-safe.
class EngineMetrics {
 public:
  EngineMetrics();

  // Handles for a deployment (created on first use, shared afterwards).
  std::shared_ptr<DeploymentMetrics> ForDeployment(const std::string& deployment);
  void ScaleEvent(const std::string& deployment, const std::string& revision);
  // A rollout event of a deployment (DeploymentController's kinds: rolling, retrying,
  // step, in_place, rolled_out, failed, superseded). A deployment's rolled_out and failed
  // series exist at 0 from its first event, so rate() sees the first of either.
  void RolloutEvent(const std::string& deployment, const std::string& kind);
  // The counters of one replica (created at 0 on first use, stable afterwards).
  const ReplicaErrorCounters* ForReplica(const std::string& deployment, const std::string& revision,
                                         const std::string& replica);

  // Gauges and counters read from the engine's state, set by the collect hook.
  void SetDeploymentLoad(const std::string& deployment, int in_flight, int waiting, int queued);
  void SetRevision(const std::string& deployment, const std::string& revision, int desired, int ready,
                   bool degraded, uint64_t restarts_total);

  // Spans of the gateways' traces: `result` is "exported", "dropped" (queue full) or
  // "failed" (the receiver refused or was unreachable), as SpanExporter counts them.
  void TraceSpans(const char* result, uint64_t n);

  // Runs before every Serialize, to refresh what is read rather than pushed.
  void SetCollectHook(std::function<void()> hook);
  // The registry in the Prometheus text format.
  std::string Serialize();
  // The registry itself, for families others own; they are served with the rest.
  prometheus::Registry* registry() { return registry_.get(); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Histogram>& cold_start_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Gauge>& waiting_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Histogram>& queue_wait_;
  prometheus::Family<prometheus::Gauge>& replicas_;
  prometheus::Family<prometheus::Gauge>& degraded_;
  prometheus::Family<prometheus::Counter>& restarts_;
  prometheus::Family<prometheus::Counter>& scale_events_;
  prometheus::Family<prometheus::Counter>& upstream_errors_;
  prometheus::Family<prometheus::Counter>& rollout_events_;
  prometheus::Family<prometheus::Counter>& trace_spans_;
  prometheus::Counter &spans_exported_, &spans_dropped_, &spans_failed_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<ReplicaErrorCounters>> replicas_errors_;  // guarded by mu_
  std::map<std::string, std::shared_ptr<DeploymentMetrics>> deployments_;  // guarded by mu_
  std::function<void()> hook_;                                            // guarded by mu_
};

}  // namespace ferry::engine
