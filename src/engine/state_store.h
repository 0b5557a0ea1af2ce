#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
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
// deployments, scale events and replica restarts with their reasons. One engine owns a
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
  Result<std::vector<StoredDeployment>> Deployments();

  Status RecordScaleEvent(const ScaleEvent& e);
  Status RecordRestart(const RestartEvent& e);
  // The newest `limit` events of a deployment, newest first.
  Result<std::vector<ScaleEvent>> ScaleEvents(const std::string& deployment, int limit);
  Result<std::vector<RestartEvent>> Restarts(const std::string& deployment, int limit);

  const std::string& path() const { return path_; }

 private:
  StateStore(std::string path, sqlite3* db, int lock_fd);
  Status Exec(const char* sql);
  Status Error(const char* what, int rc);

  const std::string path_;
  std::mutex mu_;
  sqlite3* db_;  // owned; guarded by mu_
  int lock_fd_;  // owned: holds the state folder's flock
};

}  // namespace ferry::engine
