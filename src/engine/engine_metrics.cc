#include "engine/engine_metrics.h"

#include <prometheus/text_serializer.h>

namespace ferry::engine {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                            0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                                            5,      10,      30};
  return b;
}

const prometheus::Histogram::BucketBoundaries& ColdStartBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60};
  return b;
}

}  // namespace

void DeploymentMetrics::Answered(int http_status, double seconds) {
  if (http_status >= 500) answered_5xx->Increment();
  else if (http_status >= 400) answered_4xx->Increment();
  else answered_2xx->Increment();
  latency->Observe(seconds);
}

void DeploymentMetrics::AnsweredGrpc(int grpc_code, double seconds) {
  switch (grpc_code) {
    case 0:
      grpc_answered_2xx->Increment();
      break;
    case 1:   // CANCELLED
    case 3:   // INVALID_ARGUMENT
    case 5:   // NOT_FOUND
    case 6:   // ALREADY_EXISTS
    case 7:   // PERMISSION_DENIED
    case 9:   // FAILED_PRECONDITION
    case 11:  // OUT_OF_RANGE
    case 16:  // UNAUTHENTICATED
      grpc_answered_4xx->Increment();
      break;
    default:
      grpc_answered_5xx->Increment();
  }
  latency->Observe(seconds);
}

EngineMetrics::EngineMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(BuildCounter().Name("ferry_engine_requests_total")
                    .Help("Requests the gateways answered for a deployment, by protocol and status class").Register(*registry_)),
      retries_(BuildCounter().Name("ferry_engine_upstream_retries_total")
                   .Help("Requests sent again after a replica failed before any response byte").Register(*registry_)),
      rejected_(BuildCounter().Name("ferry_engine_rejected_total")
                    .Help("Requests answered 503 by the gateway itself, by reason").Register(*registry_)),
      latency_(BuildHistogram().Name("ferry_engine_request_duration_seconds")
                   .Help("Time from admission at the gateway to the answer").Register(*registry_)),
      cold_start_(BuildHistogram().Name("ferry_engine_cold_start_wait_seconds")
                      .Help("Time a request waited at the gateway for a ready replica, for requests then routed")
                      .Register(*registry_)),
      in_flight_(BuildGauge().Name("ferry_engine_in_flight")
                     .Help("Requests admitted at the gateway and not answered yet").Register(*registry_)),
      waiting_(BuildGauge().Name("ferry_engine_waiting")
                   .Help("Requests waiting at the gateway for a ready replica").Register(*registry_)),
      queue_depth_(BuildGauge().Name("ferry_engine_queue_depth")
                       .Help("Requests queued at the gateway for a slot under gateway.max_concurrency")
                       .Register(*registry_)),
      queue_wait_(BuildHistogram().Name("ferry_engine_queue_wait_seconds")
                      .Help("Time a request waited in the gateway's queue, for requests then forwarded")
                      .Register(*registry_)),
      replicas_(BuildGauge().Name("ferry_engine_replicas")
                    .Help("Replicas of a revision: desired, ready").Register(*registry_)),
      degraded_(BuildGauge().Name("ferry_engine_revision_degraded")
                    .Help("1 while a revision crash-loops").Register(*registry_)),
      restarts_(BuildCounter().Name("ferry_engine_replica_restarts_total")
                    .Help("Replica failures (exits, failed starts) followed by a restart").Register(*registry_)),
      scale_events_(BuildCounter().Name("ferry_engine_scale_events_total")
                        .Help("Autoscaler changes of a revision's replica count").Register(*registry_)),
      upstream_errors_(BuildCounter().Name("ferry_engine_upstream_errors_total")
                           .Help("Requests a replica failed before answering, by reason (unavailable, timeout)")
                           .Register(*registry_)),
      rollout_events_(BuildCounter().Name("ferry_engine_rollout_events_total")
                          .Help("Rollout events of a deployment by kind (rolling, rolled_out, failed, ...)")
                          .Register(*registry_)),
      trace_spans_(BuildCounter().Name("ferry_engine_trace_spans_total")
                       .Help("Spans of the gateways' traces, by result (exported, dropped, failed)")
                       .Register(*registry_)),
      spans_exported_(trace_spans_.Add({{"result", "exported"}})),
      spans_dropped_(trace_spans_.Add({{"result", "dropped"}})),
      spans_failed_(trace_spans_.Add({{"result", "failed"}})) {}

void EngineMetrics::RolloutEvent(const std::string& deployment, const std::string& kind) {
  for (const char* outcome : {"rolled_out", "failed"}) rollout_events_.Add({{"deployment", deployment}, {"kind", outcome}});
  rollout_events_.Add({{"deployment", deployment}, {"kind", kind}}).Increment();
}

void EngineMetrics::TraceSpans(const char* result, uint64_t n) {
  const std::string_view r(result);
  (r == "exported" ? spans_exported_ : r == "dropped" ? spans_dropped_ : spans_failed_).Increment(static_cast<double>(n));
}

const ReplicaErrorCounters* EngineMetrics::ForReplica(const std::string& deployment, const std::string& revision,
                                                      const std::string& replica) {
  std::lock_guard lock(mu_);
  auto& c = replicas_errors_[deployment + '\0' + revision + '\0' + replica];
  if (!c) {
    c = std::make_unique<ReplicaErrorCounters>();
    auto add = [&](const char* reason) {
      return &upstream_errors_.Add(
          {{"deployment", deployment}, {"revision", revision}, {"replica", replica}, {"reason", reason}});
    };
    c->unavailable = add("unavailable");
    c->timeout = add("timeout");
  }
  return c.get();
}

std::shared_ptr<DeploymentMetrics> EngineMetrics::ForDeployment(const std::string& deployment) {
  std::lock_guard lock(mu_);
  auto& m = deployments_[deployment];
  if (m) return m;
  m = std::make_shared<DeploymentMetrics>();
  auto answered = [&](const char* protocol, const char* code) {
    return &requests_.Add({{"deployment", deployment}, {"protocol", protocol}, {"code", code}});
  };
  m->answered_2xx = answered("rest", "2xx");
  m->answered_4xx = answered("rest", "4xx");
  m->answered_5xx = answered("rest", "5xx");
  m->grpc_answered_2xx = answered("grpc", "2xx");
  m->grpc_answered_4xx = answered("grpc", "4xx");
  m->grpc_answered_5xx = answered("grpc", "5xx");
  m->retries = &retries_.Add({{"deployment", deployment}});
  m->rejected_limit = &rejected_.Add({{"deployment", deployment}, {"reason", "max_in_flight"}});
  m->rejected_no_replica = &rejected_.Add({{"deployment", deployment}, {"reason", "no_ready_replica"}});
  m->rejected_queue_full = &rejected_.Add({{"deployment", deployment}, {"reason", "queue_full"}});
  m->rejected_queue_timeout = &rejected_.Add({{"deployment", deployment}, {"reason", "queue_timeout"}});
  m->queue_wait = &queue_wait_.Add({{"deployment", deployment}}, LatencyBuckets());
  m->latency = &latency_.Add({{"deployment", deployment}}, LatencyBuckets());
  m->cold_start_wait = &cold_start_.Add({{"deployment", deployment}}, ColdStartBuckets());
  return m;
}

void EngineMetrics::ScaleEvent(const std::string& deployment, const std::string& revision) {
  scale_events_.Add({{"deployment", deployment}, {"revision", revision}}).Increment();
}

void EngineMetrics::SetDeploymentLoad(const std::string& deployment, int in_flight, int waiting, int queued) {
  in_flight_.Add({{"deployment", deployment}}).Set(in_flight);
  waiting_.Add({{"deployment", deployment}}).Set(waiting);
  queue_depth_.Add({{"deployment", deployment}}).Set(queued);
}

void EngineMetrics::SetRevision(const std::string& deployment, const std::string& revision, int desired, int ready,
                                bool degraded, uint64_t restarts_total) {
  replicas_.Add({{"deployment", deployment}, {"revision", revision}, {"state", "desired"}}).Set(desired);
  replicas_.Add({{"deployment", deployment}, {"revision", revision}, {"state", "ready"}}).Set(ready);
  degraded_.Add({{"deployment", deployment}, {"revision", revision}}).Set(degraded ? 1 : 0);
  // Exists at 0 from the revision's first report, so rate() and increase() see its
  // first event (a series that appears with its first increment hides that event).
  scale_events_.Add({{"deployment", deployment}, {"revision", revision}});
  prometheus::Counter& c = restarts_.Add({{"deployment", deployment}, {"revision", revision}});
  // Scrapes and alert evaluations both run the collect hook: one at a time here, or both
  // would add the same difference.
  std::lock_guard lock(mu_);
  const double have = c.Value();
  if (static_cast<double>(restarts_total) > have) c.Increment(static_cast<double>(restarts_total) - have);
}

void EngineMetrics::SetCollectHook(std::function<void()> hook) {
  std::lock_guard lock(mu_);
  hook_ = std::move(hook);
}

std::string EngineMetrics::Serialize() {
  std::function<void()> hook;
  {
    std::lock_guard lock(mu_);
    hook = hook_;
  }
  if (hook) hook();
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace ferry::engine
