#include "engine/router.h"

#include <limits>

namespace ferry::engine {

Router::Router() : table_(std::make_shared<RouteTable>()) {}

void Router::Publish(std::shared_ptr<const RouteTable> table) {
  std::lock_guard lock(mu_);
  table_ = std::move(table);
}

std::shared_ptr<const RouteTable> Router::Snapshot() const {
  std::lock_guard lock(mu_);
  return table_;
}

std::shared_ptr<ReplicaEndpoint> Router::Pick(const DeploymentRoute& d, const ReplicaEndpoint* avoid,
                                              std::minstd_rand& rng, const RevisionRoute** revision) {
  // Small fixed-size scratch: a revision rarely has more than a few dozen replicas.
  auto candidates = [&](const RevisionRoute& r, bool allow_avoid, std::vector<ReplicaEndpoint*>* out) {
    out->clear();
    for (const auto& e : r.replicas)
      if (e->routable.load(std::memory_order_relaxed) && (allow_avoid || e.get() != avoid)) out->push_back(e.get());
  };
  std::vector<ReplicaEndpoint*> c;
  for (bool allow_avoid : {false, true}) {
    if (allow_avoid && avoid == nullptr) break;
    // Revision by weight among those that can take the request now.
    int total = 0;
    std::vector<int> live(d.revisions.size(), 0);
    for (size_t i = 0; i < d.revisions.size(); ++i) {
      if (d.revisions[i].weight <= 0) continue;
      candidates(d.revisions[i], allow_avoid, &c);
      if (!c.empty()) live[i] = d.revisions[i].weight;
      total += live[i];
    }
    if (total == 0) continue;
    int ticket = static_cast<int>(rng() % static_cast<unsigned>(total));
    size_t ri = 0;
    while (ticket >= live[ri]) ticket -= live[ri++];
    const RevisionRoute& r = d.revisions[ri];
    candidates(r, allow_avoid, &c);
    ReplicaEndpoint* chosen = c[0];
    if (c.size() > 1) {
      size_t a = rng() % c.size();
      size_t b = rng() % (c.size() - 1);
      if (b >= a) ++b;
      chosen = c[a]->outstanding.load(std::memory_order_relaxed) <= c[b]->outstanding.load(std::memory_order_relaxed)
                   ? c[a]
                   : c[b];
    }
    if (revision) *revision = &r;
    for (const auto& e : r.replicas)
      if (e.get() == chosen) return e;
  }
  return nullptr;
}

bool HasRoutableReplica(const DeploymentRoute& d) {
  for (const auto& r : d.revisions)
    for (const auto& e : r.replicas)
      if (e->routable.load(std::memory_order_relaxed)) return true;
  return false;
}

bool GatewayReady(const RouteTable& table) {
  for (const auto& d : table.deployments)
    if (d->min_replicas > 0 && !HasRoutableReplica(*d)) return false;
  return true;
}

std::string QueueFullMessage(const DeploymentRoute& d) {
  return "deployment '" + d.name + "' is at its concurrency limit (gateway.max_concurrency " +
         std::to_string(d.max_concurrency) + " per ready replica) and its queue is full (gateway.max_queue " +
         std::to_string(d.max_queue) + ")";
}

std::string QueueTimeoutMessage(const DeploymentRoute& d, int64_t waited_ms, bool by_deadline) {
  return "deployment '" + d.name + "': waited " + std::to_string(waited_ms) +
         " ms in the gateway's queue for one of its " + std::to_string(d.max_concurrency) +
         " requests per ready replica (gateway.max_concurrency); " +
         (by_deadline ? "the request's deadline" : "gateway.queue_timeout") + " passed";
}

void ConfigureLimiter(const DeploymentRoute& d) {
  // Unlimited: new requests take no slot; any still queued from a limit that was just
  // lifted go at once.
  if (d.max_concurrency <= 0) return d.load->limiter.Configure(std::numeric_limits<int>::max(), 0);
  int routable = 0;
  for (const auto& r : d.revisions)
    if (r.weight > 0)
      for (const auto& e : r.replicas)
        if (e->routable.load(std::memory_order_relaxed)) ++routable;
  d.load->limiter.Configure(d.max_concurrency * routable, d.max_queue);
}

}  // namespace ferry::engine
