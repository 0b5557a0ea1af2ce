#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

struct sqlite3;

namespace ferry::engine {

// A deployment as the engine was asked to run it.
struct StoredDeployment {
  std::string name;
  std::string spec_yaml;  // the deployment's YAML, as in the spec file
  std::string spec_file;  // the file it came from: names errors, anchors relative paths
  int64_t generation = 0;  // 1 on create, +1 on each changed update
  int64_t updated_ms = 0;  // wall clock
  // The last spec that was rolled out completely (its replicas all became ready, or the
  // change needed none): what an engine restart starts first. Empty before that.
  std::string active_yaml;
  std::string active_file;
  int64_t active_generation = 0;
  // Replicas per revision pinned by the admin API (`ferry scale NAME N`); none: autoscaled.
  std::optional<int> pinned;
};

// One deployment of an apply, and what storing it did.
struct DeploymentPut {
  std::string name;
  std::string spec_yaml;
  std::string spec_file;
};
struct PutOutcome {
  int64_t generation = 0;
  bool created = false;  // the name was not stored before
  bool changed = false;  // created, or its YAML differs from the stored one
};

// A step of a deployment's life: created, updated in place, rolling update started,
// rolled out, failed, superseded, deleted, pinned.
struct RolloutEvent {
  int64_t ts_ms = 0;
  std::string deployment;
  int64_t generation = 0;
  std::string kind;     // "created", "in_place", "rolling", "rolled_out", "failed", "superseded", "deleted", "scaled"
  std::string message;  // what changed, or why it failed
};

struct ScaleEvent {
  int64_t ts_ms = 0;
  std::string deployment;
  std::string revision;
  int from = 0;
  int to = 0;
  std::string reason;
};

struct RestartEvent {
  int64_t ts_ms = 0;
  std::string deployment;
  std::string revision;
  int replica = 0;        // index within the revision
  int64_t pid = 0;
  std::string exit;       // "exit status 3", "killed by signal 9 (Killed)", "not ready after 120 s"
  std::string log_tail;   // last lines of the replica's output
};

// The engine's durable state in SQLite (WAL journal) at DIR/engine.db: the desired
// deployments (desired and last rolled out, replica pins), scale events, replica restarts
// with their reasons, and rollout events. One engine owns a
// state folder: Open takes an exclusive lock on DIR/engine.lock and refuses a second one.
// Every write is its own transaction, so admin changes are serialised.
// Errors name the database file: a locked database is Unavailable, a full disk or an
// unwritable folder is Internal with SQLite's reason.
// Thread-safety: all methods are thread-safe (one connection behind a mutex).
class StateStore {
 public:
  static Result<std::unique_ptr<StateStore>> Open(const std::string& state_dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Creates or replaces a deployment; the generation goes up only when the YAML changed.
  Status PutDeployment(const std::string& name, const std::string& spec_yaml, const std::string& spec_file);
  Status DeleteDeployment(const std::string& name);
  // Puts and deletes in one transaction: all of them are stored, or none (on an error,
  // such as a full disk or a database locked by another process). NotFound for a
  // delete of a name that is not stored.
  Result<std::vector<PutOutcome>> WriteDeployments(const std::vector<DeploymentPut>& puts,
                                                   const std::vector<std::string>& deletes);
  Result<std::vector<StoredDeployment>> Deployments();
  // Records that `generation` of the deployment (its YAML and file) now serves.
  Status SetActive(const std::string& name, const std::string& spec_yaml, const std::string& spec_file,
                   int64_t generation);
  // Pins the replicas per revision, or (nullopt) hands them back to the autoscaler.
  // NotFound when the deployment is not stored.
  Status SetReplicaPin(const std::string& name, std::optional<int> replicas);

  Status RecordScaleEvent(const ScaleEvent& e);
  Status RecordRestart(const RestartEvent& e);
  // The newest `limit` events of a deployment, newest first.
  Result<std::vector<ScaleEvent>> ScaleEvents(const std::string& deployment, int limit);
  Result<std::vector<RestartEvent>> Restarts(const std::string& deployment, int limit);
  Status RecordRolloutEvent(const RolloutEvent& e);
  Result<std::vector<RolloutEvent>> RolloutEvents(const std::string& deployment, int limit);

  // Runs SQL on the store's connection: for tests that make it fail (PRAGMA max_page_count).
  Status ExecForTesting(const std::string& sql);

  const std::string& path() const { return path_; }

 private:
  StateStore(std::string path, sqlite3* db, int lock_fd);
  Status Exec(const char* sql);
  Status Error(const char* what, int rc);
  Status Migrate();
  // Inside a transaction, mu_ held.
  Result<PutOutcome> PutLocked(const DeploymentPut& put, int64_t now_ms);
  Status DeleteLocked(const std::string& name);

  const std::string path_;
  std::mutex mu_;
  sqlite3* db_;  // owned; guarded by mu_
  int lock_fd_;  // owned: holds the state folder's flock
};

}  // namespace ferry::engine
