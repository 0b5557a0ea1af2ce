#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "engine/log_pump.h"
#include "engine/router.h"
#include "engine/spec.h"
#include "engine/state_store.h"

namespace ferry::engine {

struct SupervisorOptions {
  std::string binary = "/proc/self/exe";  // what replicas run: this very binary
  std::string state_dir;                  // logs/ and revisions/ go below it
  uint64_t log_max_bytes = 10ull << 20;   // per replica log file, then it rotates
  int log_keep = 3;                       // rotated files kept
  std::chrono::milliseconds probe_timeout{1000};
  // The replicas' base environment; the engine passes its own minus FERRY_* variables,
  // which would otherwise configure (or, for FERRY_MODEL_REPOSITORY, add to) every replica.
  std::vector<std::string> base_env;
  // `ferry serve` options every replica gets unless its revision's serve options set the
  // same key (the engine's tracing endpoint), as name (no dashes) -> value.
  std::map<std::string, std::string> inherited_serve_options;
};

enum class ReplicaState {
  kStarting,  // process running, not ready yet: probed every health.probe_interval
  kReady,     // routable
  kBackoff,   // crashed or failed to start; restarts at a time set by the back-off
  kDraining,  // no new requests; waiting for in-flight ones (drain.grace)
  kStopping,  // SIGTERM sent; SIGKILL after drain.kill_after
};
std::string_view ReplicaStateName(ReplicaState s);

struct ReplicaStatus {
  int index = 0;
  pid_t pid = -1;
  uint16_t http_port = 0;
  uint16_t grpc_port = 0;  // 0 while no process runs
  uint16_t metrics_port = 0;  // 0 while no process runs
  ReplicaState state = ReplicaState::kStarting;
  int outstanding = 0;
  int restarts = 0;
  std::string log_path;
};

struct RevisionStatus {
  std::string deployment;
  std::string revision;
  std::string key;  // as given to AddRevision (the revision's name by default)
  int desired = 0;
  int ready = 0;
  uint64_t restarts_total = 0;  // failures of its replicas since the engine started
  bool degraded = false;
  std::string degraded_reason;  // exit status and last log lines of the last failure
  std::vector<ReplicaStatus> replicas;
};

// Runs the replicas of every revision as child `ferry serve` processes on loopback ports
// it picks, and keeps their count at the desired one:
//  - a replica becomes routable once ProbeReplica finds it ready (health and every model
//    of the revision READY); one that is not ready within health.ready_timeout, or whose
//    model fails to load, is killed and counts as a failure;
//  - a replica that exits on its own is a failure: recorded in the state store with its
//    exit status and last log lines, then restarted after a capped exponential back-off
//    (restart.initial_backoff doubling up to restart.max_backoff; reset once ready);
//  - restart.crash_loop_failures failures within restart.crash_loop_window mark the
//    revision degraded (with the reason) until one of its replicas is ready again; the
//    other revisions are not affected;
//  - scaling down and stopping drain: stop routing, wait for in-flight requests up to
//    drain.grace, SIGTERM, SIGKILL after drain.kill_after;
//  - output goes to DIR/logs/<deployment>/<revision>/replica-<i>.log, rotated by size.
// Replicas are launched by LaunchChild with PR_SET_PDEATHSIG, from the control thread: if
// the engine dies, even by SIGKILL, the kernel kills them.
// Thread-safety: everything but StatusReport() must be called from one thread, the
// control thread, which must live as long as the replicas. StatusReport() is thread-safe.
class Supervisor {
 public:
  // store and clock: not owned; store may be null (no history kept).
  Supervisor(SupervisorOptions options, StateStore* store, const Clock* clock);
  ~Supervisor();  // kills what still runs (SIGKILL) and reaps it; call StopAll first to drain

  // Supervises a revision of `deployment`, starting with `initial` replicas at the next Tick.
  // `key` names this instance of the revision in every other call (default: the
  // revision's name): two instances of one revision (old and new settings, during a
  // rolling update) run side by side under different keys. Their replicas get different
  // indexes, so their log files differ; the link repository is DIR/revisions/<deployment>/<key>/models.
  // In the calls below, `revision` is that key.
  Status AddRevision(std::shared_ptr<const DeploymentSpec> deployment, const std::string& revision, int initial,
                     const std::string& key = "");
  // Settings that need no new process (drain, health, restart policy, ...) change in place:
  // the revision's instance now follows `deployment`, which must hold the same revision
  // with the same processes (spec_diff.h SameProcesses).
  Status UpdateDeployment(const std::string& revision, std::shared_ptr<const DeploymentSpec> deployment);
  // Forgets an instance whose replicas are all gone (SetDesired 0 drains them); false
  // while some still run.
  bool RemoveRevision(const std::string& deployment, const std::string& revision);
  void SetDesired(const std::string& deployment, const std::string& revision, int replicas);
  int Desired(const std::string& deployment, const std::string& revision) const;

  // One control step: reap exits, probe, drain, restart, scale. True when the set of
  // endpoints changed (the route table must be rebuilt).
  bool Tick();

  // Every endpoint of a revision that runs a process, in index order; routable or not.
  std::vector<std::shared_ptr<ReplicaEndpoint>> Endpoints(const std::string& deployment,
                                                          const std::string& revision) const;
  std::shared_ptr<RevisionLoad> Load(const std::string& deployment, const std::string& revision) const;
  // Sum of outstanding requests at the revision's endpoints.
  int InFlight(const std::string& deployment, const std::string& revision) const;
  int ReadyCount(const std::string& deployment, const std::string& revision) const;

  // Drains and stops every replica, ticking until all are gone or `timeout` passed (then
  // SIGKILL). Blocks the calling (control) thread.
  void StopAll(std::chrono::milliseconds timeout);

  std::vector<RevisionStatus> StatusReport() const;

 private:
  struct Replica;
  struct Revision;
  Revision* Find(const std::string& deployment, const std::string& revision) const;
  void Spawn(Revision& rev, Replica& r);
  void OnExit(Revision& rev, Replica& r, int wstatus);
  void Fail(Revision& rev, Replica& r, const std::string& why);
  bool TickRevision(Revision& rev);
  void Publish();

  const SupervisorOptions options_;
  std::string argv0_;  // the binary's resolved path
  StateStore* store_;
  const Clock* clock_;
  LogPump pump_;
  std::vector<std::unique_ptr<Revision>> revisions_;  // control thread only
  mutable std::mutex status_mu_;
  std::vector<RevisionStatus> status_;  // guarded by status_mu_
};

}  // namespace ferry::engine
