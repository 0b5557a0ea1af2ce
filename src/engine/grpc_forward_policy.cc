#include "engine/grpc_forward_policy.h"

#include "protocol/grpc/grpc_codes.h"
#include "core/log.h"
#include "engine/engine_metrics.h"
#include "protocol/grpc/grpc_service.pb.h"
#include "protocol/grpc/statistics_proto.h"

namespace ferry::engine::grpc_forward {

namespace {

using namespace protocol::grpc_code;  // NOLINT: the gRPC status codes

constexpr MethodInfo kMethods[] = {
    {"/inference.GRPCInferenceService/ModelInfer", Method::kInfer, kInferRequestFields},
    {"/inference.GRPCInferenceService/ModelStreamInfer", Method::kStreamInfer, kInferRequestFields},
    {"/inference.GRPCInferenceService/ModelMetadata", Method::kMetadata,
     {"ModelMetadataRequest", "name", "version", ""}},
    {"/inference.GRPCInferenceService/ModelReady", Method::kReady, {"ModelReadyRequest", "name", "version", ""}},
    {"/inference.GRPCInferenceService/ModelConfig", Method::kConfig, {"ModelConfigRequest", "name", "version", ""}},
    {"/inference.GRPCInferenceService/ModelStatistics", Method::kStatistics,
     {"ModelStatisticsRequest", "name", "version", ""}},
};

}  // namespace

const MethodInfo* FindMethod(std::string_view path) {
  for (const auto& m : kMethods)
    if (m.path == path) return &m;
  return nullptr;
}

std::minstd_rand& Rng() {
  thread_local std::minstd_rand rng(std::random_device{}());
  return rng;
}

bool Forwardable(std::string_view k) {
  if (k.empty() || k[0] == ':' || k.substr(0, 5) == "grpc-") return false;
  for (std::string_view hop : {"user-agent", "te", "content-type", "host", "connection", "keep-alive",
                               "proxy-connection", "transfer-encoding", "upgrade"})
    if (k == hop) return false;
  return true;
}

std::string UnknownModel(const std::string& name) {
  return "Request for unknown model: '" + name + "' is not found";  // `ferry serve`'s words
}

bool AdmitInFlight(const DeploymentRoute& dep) {
  if (dep.load->in_flight.fetch_add(1, std::memory_order_relaxed) < dep.max_in_flight) return true;
  dep.load->in_flight.fetch_sub(1, std::memory_order_relaxed);
  dep.load->rejected.fetch_add(1, std::memory_order_relaxed);
  if (dep.metrics) {
    dep.metrics->rejected_limit->Increment();
    dep.metrics->AnsweredGrpc(kResourceExhausted, 0);
  }
  return false;
}

std::string OverLimit(const DeploymentRoute& d) {
  return "deployment '" + d.name + "' has " + std::to_string(d.max_in_flight) +
         " requests in flight, its limit (gateway.max_in_flight)";
}

std::string NoReadyReplica(const DeploymentRoute& dep, bool degraded, int64_t waited_ms) {
  if (dep.metrics) dep.metrics->rejected_no_replica->Increment();
  return "deployment '" + dep.name + "' has no ready replica" +
         (degraded ? ": its revisions are degraded"
                   : " (waited " + std::to_string(waited_ms) + " ms, gateway.cold_start_timeout)");
}

void CountUpstreamError(const ReplicaEndpoint& ep, bool timeout) {
  if (const ReplicaErrorCounters* c = ep.errors.load(std::memory_order_acquire))
    (timeout ? c->timeout : c->unavailable)->Increment();
}

bool PickRetry(const DeploymentRoute& dep, std::shared_ptr<ReplicaEndpoint>* ep, const RevisionRoute** revision,
               std::string_view error) {
  const RevisionRoute* rev = nullptr;
  std::shared_ptr<ReplicaEndpoint> next = Router::Pick(dep, ep->get(), Rng(), &rev);
  if (!next) return false;
  CountUpstreamError(**ep, /*timeout=*/false);
  if (dep.metrics) dep.metrics->retries->Increment();
  FERRY_LOG(kDebug, "upstream failed before responding; retrying",
            ("replica", (*ep)->id)("next", next->id)("error", error));
  *ep = std::move(next);
  *revision = rev;
  return true;
}

std::string ReplicaFailed(const DeploymentRoute& dep, const ReplicaEndpoint& ep, std::string_view error) {
  return "deployment '" + dep.name + "': replica " + ep.id + " failed: " + std::string(error);
}

std::string ReplicaTimedOut(const DeploymentRoute& dep, const ReplicaEndpoint& ep) {
  return "deployment '" + dep.name + "': replica " + ep.id + " did not answer within " +
         std::to_string(dep.request_timeout_ms) + " ms (gateway.request_timeout)";
}

StatisticsSum SumStatistics(std::string_view deployment, const std::vector<StatisticsAnswer>& answers,
                            std::string* out) {
  std::vector<std::vector<protocol::StatisticsSnapshot>> parts;
  for (size_t i = 0; i < answers.size(); ++i) {
    const StatisticsAnswer& a = answers[i];
    const std::string replica = "deployment '" + std::string(deployment) + "': replica " + a.ep->id;
    if (a.code == kUnavailable || a.code == kDeadlineExceeded)
      return {kUnavailable, replica + " did not answer the statistics request: " + a.message};
    if (a.code != 0) return {a.code, a.message, static_cast<int>(i)};  // the replica's own answer, as it is
    inference::ModelStatisticsResponse part;
    if (!part.ParseFromString(a.bytes))
      return {kUnavailable, replica + " answered something that is not a ModelStatisticsResponse"};
    parts.push_back(protocol::StatisticsFromProto(part));
  }
  inference::ModelStatisticsResponse sum;
  protocol::StatisticsToProto(protocol::MergeStatistics(parts), &sum);
  *out = sum.SerializeAsString();
  return {};
}

CallPlace::Step CallPlace::Next(const Router& router, bool may_queue, bool deadline_passed,
                                std::shared_ptr<ReplicaEndpoint>* ep, const RevisionRoute** revision,
                                std::string* no_replica) {
  if (waiting) Refresh(router);
  // Under gateway.max_concurrency a call (a stream: once) takes a slot before it goes
  // to a replica, once one is ready: the cold-start wait below comes first.
  if (may_queue && dep->max_concurrency > 0 && !holds_slot && HasRoutableReplica(*dep)) return Step::kQueue;
  *ep = Router::Pick(*dep, nullptr, Rng(), revision);
  if (*ep) {
    StopWaiting(true);
    (*revision)->load->arrivals.fetch_add(1, std::memory_order_relaxed);
    return Step::kPicked;
  }
  const auto now = std::chrono::steady_clock::now();
  if (!waiting) {
    waiting = true;
    wait_start = now;
    dep->load->waiting.fetch_add(1, std::memory_order_relaxed);
  }
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - wait_start).count();
  const bool degraded = !dep->CanStartReplica();
  if (degraded || waited >= dep->cold_start_timeout_ms || deadline_passed) {
    StopWaiting(false);
    *no_replica = NoReadyReplica(*dep, degraded, waited);
    return Step::kNoReplica;
  }
  return Step::kWait;
}

ConcurrencyLimiter::Outcome CallPlace::AskSlot(const std::shared_ptr<ConcurrencyLimiter::Waiter>& waiter) {
  const ConcurrencyLimiter::Outcome outcome = dep->load->limiter.Acquire(waiter);
  if (outcome == ConcurrencyLimiter::Outcome::kAcquired) holds_slot = true;
  if (outcome == ConcurrencyLimiter::Outcome::kQueueFull && dep->metrics) dep->metrics->rejected_queue_full->Increment();
  return outcome;
}

void CallPlace::ReleaseSlot() {
  if (!holds_slot) return;
  holds_slot = false;
  dep->load->limiter.Release();
}

void CallPlace::StopWaiting(bool routed) {
  if (!waiting) return;
  waiting = false;
  dep->load->waiting.fetch_sub(1, std::memory_order_relaxed);
  if (routed && dep->metrics)
    dep->metrics->cold_start_wait->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count());
}

void CallPlace::Refresh(const Router& router) {
  auto now = router.Snapshot();
  for (const auto& d : now->deployments)
    if (d->name == dep->name && d->load == dep->load) {
      dep = d.get();
      table = std::move(now);
      return;
    }
}

void RecordAnswer(const DeploymentRoute& dep, int grpc_code, std::chrono::steady_clock::time_point admitted) {
  if (dep.metrics)
    dep.metrics->AnsweredGrpc(grpc_code, std::chrono::duration<double>(std::chrono::steady_clock::now() - admitted).count());
}

}  // namespace ferry::engine::grpc_forward
