#pragma once

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "engine/autoscaler.h"
#include "engine/engine_metrics.h"
#include "engine/latency_histogram.h"
#include "engine/router.h"
#include "engine/spec.h"
#include "engine/spec_diff.h"
#include "engine/state_store.h"
#include "engine/supervisor.h"

namespace ferry::engine {

// A stored deployment as the engine finds it at start.
struct DeploymentInit {
  std::string name;
  // The spec that last rolled out completely, parsed; null when there is none (never
  // ready yet) or it no longer validates (then the desired spec starts directly).
  std::shared_ptr<const DeploymentSpec> active;
  int64_t active_generation = 0;
  std::string active_file;
  std::shared_ptr<const DeploymentSpec> desired;  // the newest accepted spec
  int64_t generation = 0;
  std::string file;
  std::optional<int> pinned;
};

// What an accepted change did to one deployment.
struct ApplyOutcome {
  std::string name;
  int64_t generation = 0;
  // "created"; "unchanged"; "in_place" (applied to the running replicas); "rolling" (new
  // replicas start; the old ones serve until those are ready); "retrying" (the same
  // generation again, after its rollout failed).
  std::string change;
  std::string message;  // DeploymentDiff::Describe, or why nothing changed
};

// Where a replica's log is, for GET /v1/deployments/{name}/logs.
struct LogTarget {
  std::string revision;
  int replica = 0;
  std::string path;
};

// The deployments of a running engine and their lifecycle: creation, in-place updates,
// rolling updates, deletion, replica pins, autoscaling. Applies every admin change.
//
// Rolling update (a change that needs new processes, see spec_diff.h): every new or
// changed revision starts as a new *instance* beside the old one, with as many replicas as
// the old one runs (within the new bounds, at least 1; a pinned count when pinned). The new
// instances get no traffic until every one of them has all its replicas ready; then, in
// one route-table publication, the new spec takes over (weights, limits, bounds) and the
// old instances drain (no new requests, in-flight ones finish within drain.grace,
// SIGTERM). That is a surge of 100% (the default): capacity never drops below the old
// count, and a failure costs nothing to undo. With rollout.max_surge below a replaced
// revision's count, its new instance starts `max_surge` replicas at a time instead
// (surge_step.h): each one is routed beside the old ones once ready, then as many old
// replicas drain, and the next step starts once they have exited; the cut-over comes
// when every new replica is ready. A failure then gives the old instance back the
// replicas the steps took from it (it starts them again) while the new ones drain. The update fails when a new instance crash-loops
// (restart.crash_loop_failures) or rollout.progress_deadline passes: its replicas stop,
// the old ones never stopped serving, and the failure is kept in the status and the
// events. A newer change during an update supersedes it (its new instances stop).
// Every other change applies in place at once.
//
// Before a change is acknowledged it is stored (StateStore), so an engine restart comes
// back to it: the spec that last rolled out completely starts first, then a newer
// desired one rolls out the same way.
//
// Thread-safety: everything but the `Thread-safe` methods runs on the control thread
// (it launches replicas through the Supervisor, whose PDEATHSIG follows that thread).
class DeploymentController {
 public:
  // Not owned; all outlive the controller. store may not be null.
  DeploymentController(Supervisor* supervisor, StateStore* store, EngineMetrics* metrics, const Clock* clock,
                       std::string state_dir);

  // The deployments at start: each one's active spec starts (or its desired one, when it
  // has none), then a differing desired spec rolls out.
  Status Init(std::vector<DeploymentInit> deployments);

  // Creates or updates the deployments of `specs` (from `file`: stored to anchor their
  // relative paths on restart); with `prune`, deletes the stored ones it lacks. All are
  // stored in one transaction before anything runs. AlreadyExists (409) when a model is
  // served by a deployment outside the change.
  Result<std::vector<ApplyOutcome>> Apply(std::vector<DeploymentSpec> specs, const std::string& file, bool prune,
                                          std::vector<std::string>* deleted);
  // Deletes a deployment: unrouted at once, its replicas drain and stop. NotFound.
  Status Delete(const std::string& name);
  // Pins every revision of a deployment to `replicas`, or (nullopt) back to the autoscaler.
  Status Scale(const std::string& name, std::optional<int> replicas);

  // One control step: autoscalers, rollout progress, instances that finished draining.
  // True when the routes changed (call Routes).
  bool Tick();
  // The route table of every deployment's serving instances.
  std::shared_ptr<RouteTable> Routes() const;
  // The longest drain.grace + kill_after of any deployment (for the engine's stop).
  Millis LongestDrain() const;

  // Thread-safe: the deployments part of the status document, then every supervised
  // revision instance (`revisions`) with its role and generation.
  void WriteStatus(rapidjson::PrettyWriter<rapidjson::StringBuffer>& w, const std::vector<RevisionStatus>& report) const;
  // Thread-safe: one deployment as JSON (GET /v1/deployments/{name}); nullopt when unknown.
  std::optional<std::string> DeploymentJson(const std::string& name, const std::vector<RevisionStatus>& report) const;
  // Thread-safe: the log of a replica; revision and replica default to the serving
  // instance of the revision with the most traffic, and its first replica.
  Result<LogTarget> ResolveLogs(const std::string& name, const std::optional<std::string>& revision,
                                std::optional<int> replica, const std::vector<RevisionStatus>& report) const;
  // Thread-safe: the names of the deployments (deleted ones excluded).
  std::vector<std::string> Names() const;

 private:
  enum class Role { kServing, kIncoming, kRetiring };
  struct Instance {
    std::string key;       // the supervisor's name of it
    std::string revision;  // the revision's name
    int64_t generation = 0;
    Role role = Role::kServing;
    std::unique_ptr<Autoscaler> autoscaler;  // serving and not pinned
    uint64_t last_arrivals = 0;
    LatencyHistogram::Counts last_latency{};
    int target = 0;  // incoming: replicas to have ready before the cut-over
    // A stepped replacement (rollout.max_surge below the replica count). Incoming: its
    // replicas start in steps and are routed beside the old instance's as they become
    // ready. Serving: the instance such an incoming one replaces; `restore` is the count
    // it ran before, given back if the rollout fails or is superseded.
    bool stepped = false;
    bool replacing = false;
    int restore = 0;
  };
  enum class State { kReady, kRolling, kFailed };
  struct Live {
    std::string name;
    std::shared_ptr<const DeploymentSpec> serving;  // the instances in the routes follow it
    int64_t serving_generation = 0;
    std::string serving_file;
    std::shared_ptr<const DeploymentSpec> desired;  // newest accepted (stored)
    int64_t generation = 0;
    std::string file;
    std::optional<int> pinned;
    std::vector<Instance> instances;
    State state = State::kRolling;
    bool creating = true;  // first start: its instances serve as they come up
    int64_t rollout_generation = 0;
    uint64_t rollout_deadline = 0;
    uint64_t rollout_started = 0;
    DeploymentDiff diff;   // of the rollout in progress
    std::string message;   // the rollout's progress, or why it failed
    std::shared_ptr<DeploymentLoad> load = std::make_shared<DeploymentLoad>();
  };
  struct Orphan {  // an instance of a deleted deployment, draining
    std::string deployment;
    std::string key;
  };

  Live* Find(const std::string& name);
  std::string UniqueKey(const std::string& deployment, const std::string& revision, int64_t generation) const;
  Status AddInstance(Live& d, const std::shared_ptr<const DeploymentSpec>& spec, const std::string& revision,
                     Role role, int count);
  void Create(Live& d);
  void Update(Live& d, std::shared_ptr<const DeploymentSpec> spec, int64_t generation, const std::string& file,
              bool retry, ApplyOutcome* out);
  void ApplyInPlace(Live& d, const DeploymentDiff& diff);
  void CutOver(Live& d);
  void FailRollout(Live& d, const std::string& why);
  // One tick of every stepped replacement of a rollout (surge_step.h); true when a count changed.
  bool StepReplacements(Live& d, const std::vector<RevisionStatus>& report);
  // Gives the old instances of stepped replacements back their replicas; what it did.
  std::string RestoreReplaced(Live& d);
  void Retire(Live& d, Instance& i);
  void ResetAutoscaler(Live& d, Instance& i);
  void Autoscale(Live& d);
  bool Progress(Live& d, const std::vector<RevisionStatus>& report);
  void Event(const Live& d, int64_t generation, const std::string& kind, const std::string& message);
  void RecordScale(const std::string& deployment, const std::string& revision, int from, int to,
                  const std::string& reason);
  void SetActive(Live& d);
  void PublishView();

  Supervisor* supervisor_;
  StateStore* store_;
  EngineMetrics* metrics_;
  const Clock* clock_;
  const std::string state_dir_;
  std::vector<std::unique_ptr<Live>> live_;  // control thread only
  std::vector<Orphan> orphans_;              // control thread only

  // What the thread-safe methods read: rebuilt by PublishView.
  struct InstanceView {
    std::string key, revision, role;
    int64_t generation = 0;
    int target = 0;
  };
  struct View {
    std::string name, state, message, file, yaml;
    int64_t generation = 0, serving_generation = 0, rollout_generation = 0;
    std::optional<int> pinned;
    std::vector<std::pair<std::string, int>> traffic;  // serving spec
    std::vector<InstanceView> instances;
  };
  mutable std::mutex view_mu_;
  std::vector<View> views_;                 // guarded by view_mu_
  std::vector<Orphan> orphan_views_;        // guarded by view_mu_
};

}  // namespace ferry::engine
