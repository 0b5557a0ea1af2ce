#include "engine/state_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/clock.h"

namespace ferry::engine {
namespace {

// 1: deployments, scale_events, restarts. 2: deployments' active_* and replicas_pin
// columns, rollout_events.
constexpr int kSchemaVersion = 2;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS deployments (
  name TEXT PRIMARY KEY,
  spec_yaml TEXT NOT NULL,
  spec_file TEXT NOT NULL,
  generation INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  active_yaml TEXT NOT NULL DEFAULT '',
  active_file TEXT NOT NULL DEFAULT '',
  active_generation INTEGER NOT NULL DEFAULT 0,
  replicas_pin INTEGER);
CREATE TABLE IF NOT EXISTS rollout_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms INTEGER NOT NULL, deployment TEXT NOT NULL, generation INTEGER NOT NULL,
  kind TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rollout_events_by_deployment ON rollout_events (deployment, id);
CREATE TABLE IF NOT EXISTS scale_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms INTEGER NOT NULL, deployment TEXT NOT NULL, revision TEXT NOT NULL,
  from_replicas INTEGER NOT NULL, to_replicas INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS scale_events_by_deployment ON scale_events (deployment, id);
CREATE TABLE IF NOT EXISTS restarts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms INTEGER NOT NULL, deployment TEXT NOT NULL, revision TEXT NOT NULL,
  replica INTEGER NOT NULL, pid INTEGER NOT NULL, exit TEXT NOT NULL, log_tail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS restarts_by_deployment ON restarts (deployment, id);
)sql";

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  int rc() const { return rc_; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(s_); }
  std::string Text(int col) {
    const unsigned char* t = sqlite3_column_text(s_, col);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(s_, col)) : std::string();
  }
  int64_t Int(int col) { return sqlite3_column_int64(s_, col); }
  bool Null(int col) { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  Stmt& BindNull(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

}  // namespace

StateStore::StateStore(std::string path, sqlite3* db, int lock_fd)
    : path_(std::move(path)), db_(db), lock_fd_(lock_fd) {}

StateStore::~StateStore() {
  sqlite3_close_v2(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::unique_ptr<StateStore>> StateStore::Open(const std::string& state_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec || !fs::is_directory(state_dir))
    return Internal("state folder '" + state_dir + "' cannot be created: " + (ec ? ec.message() : "not a folder"));
  const std::string lock_path = (fs::path(state_dir) / "engine.lock").string();
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Internal("state folder '" + state_dir + "' is not writable: " + lock_path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Unavailable("state folder '" + state_dir + "' is in use by another ferry engine (" + lock_path +
                       " is locked)");
  }
  const std::string path = (fs::path(state_dir) / "engine.db").string();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<StateStore> store(new StateStore(path, db, fd));
  if (rc != SQLITE_OK) return store->Error("open", rc);
  // A short wait covers a reader of another process (sqlite3 on the command line);
  // past it, a locked database is reported rather than waited on forever.
  sqlite3_busy_timeout(db, 2000);
  FERRY_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  FERRY_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=NORMAL"));
  FERRY_RETURN_IF_ERROR(store->Migrate());
  return store;
}

Status StateStore::Migrate() {
  int64_t version = 0;
  {
    Stmt s(db_, "PRAGMA user_version");
    if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
    if (s.Step() == SQLITE_ROW) version = s.Int(0);
  }
  if (version > kSchemaVersion)
    return FailedPrecondition("state database '" + path_ + "' has schema version " + std::to_string(version) +
                              ", newer than this ferry's (" + std::to_string(kSchemaVersion) + ")");
  FERRY_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status st = Exec(kSchema);
  if (st.ok() && version == 1) {
    // A version-1 engine ran exactly the stored spec: it is the active one.
    st = Exec(
        "ALTER TABLE deployments ADD COLUMN active_yaml TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE deployments ADD COLUMN active_file TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE deployments ADD COLUMN active_generation INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE deployments ADD COLUMN replicas_pin INTEGER;"
        "UPDATE deployments SET active_yaml = spec_yaml, active_file = spec_file, active_generation = generation;");
  }
  if (st.ok()) st = Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
  if (st.ok()) st = Exec("COMMIT");
  if (!st.ok()) Exec("ROLLBACK").ok();
  return st;
}

Status StateStore::Error(const char* what, int rc) {
  std::string msg = "state database '" + path_ + "': " + what + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
    return Unavailable(msg + " (another process holds a lock on it)");
  return Internal(msg);
}

Status StateStore::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return Error("write", rc);
  return Status::Ok();
}

Result<PutOutcome> StateStore::PutLocked(const DeploymentPut& put, int64_t now_ms) {
  PutOutcome out;
  {
    Stmt s(db_, "SELECT spec_yaml, generation FROM deployments WHERE name = ?1");
    if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
    s.Bind(1, put.name);
    int rc = s.Step();
    if (rc == SQLITE_ROW) {
      out.changed = s.Text(0) != put.spec_yaml;
      out.generation = s.Int(1) + (out.changed ? 1 : 0);
    } else if (rc == SQLITE_DONE) {
      out.created = out.changed = true;
      out.generation = 1;
    } else {
      return Error("read deployment", rc);
    }
  }
  Stmt s(db_,
         "INSERT INTO deployments (name, spec_yaml, spec_file, generation, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) "
         "ON CONFLICT(name) DO UPDATE SET generation = excluded.generation, spec_yaml = excluded.spec_yaml, "
         "spec_file = excluded.spec_file, updated_ms = excluded.updated_ms");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  s.Bind(1, put.name).Bind(2, put.spec_yaml).Bind(3, put.spec_file).Bind(4, out.generation).Bind(5, now_ms);
  int rc = s.Step();
  if (rc != SQLITE_DONE) return Error("store deployment", rc);
  return out;
}

Status StateStore::DeleteLocked(const std::string& name) {
  Stmt s(db_, "DELETE FROM deployments WHERE name = ?1");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  int rc = s.Bind(1, name).Step();
  if (rc != SQLITE_DONE) return Error("delete deployment", rc);
  if (sqlite3_changes(db_) == 0) return NotFound("deployment '" + name + "' is not deployed");
  return Status::Ok();
}

Result<std::vector<PutOutcome>> StateStore::WriteDeployments(const std::vector<DeploymentPut>& puts,
                                                            const std::vector<std::string>& deletes) {
  std::lock_guard lock(mu_);
  const int64_t now = static_cast<int64_t>(WallMillis());
  FERRY_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  std::vector<PutOutcome> out;
  Status st;
  for (const auto& p : puts) {
    auto r = PutLocked(p, now);
    if (!r.ok()) {
      st = r.status();
      break;
    }
    out.push_back(*r);
  }
  for (size_t i = 0; st.ok() && i < deletes.size(); ++i) st = DeleteLocked(deletes[i]);
  if (st.ok()) st = Exec("COMMIT");
  if (!st.ok()) {
    Exec("ROLLBACK").ok();
    return st;
  }
  return out;
}

Status StateStore::PutDeployment(const std::string& name, const std::string& spec_yaml, const std::string& spec_file) {
  return WriteDeployments({{name, spec_yaml, spec_file}}, {}).status();
}

Status StateStore::DeleteDeployment(const std::string& name) {
  std::lock_guard lock(mu_);
  return DeleteLocked(name);
}

Result<std::vector<StoredDeployment>> StateStore::Deployments() {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "SELECT name, spec_yaml, spec_file, generation, updated_ms, active_yaml, active_file, active_generation, "
         "replicas_pin FROM deployments ORDER BY name");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  std::vector<StoredDeployment> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    StoredDeployment d{s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Int(4), s.Text(5), s.Text(6), s.Int(7), {}};
    if (!s.Null(8)) d.pinned = static_cast<int>(s.Int(8));
    out.push_back(std::move(d));
  }
  if (rc != SQLITE_DONE) return Error("read deployments", rc);
  return out;
}

Status StateStore::SetActive(const std::string& name, const std::string& spec_yaml, const std::string& spec_file,
                             int64_t generation) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "UPDATE deployments SET active_yaml = ?2, active_file = ?3, active_generation = ?4 WHERE name = ?1");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  int rc = s.Bind(1, name).Bind(2, spec_yaml).Bind(3, spec_file).Bind(4, generation).Step();
  if (rc != SQLITE_DONE) return Error("store active deployment", rc);
  return Status::Ok();
}

Status StateStore::SetReplicaPin(const std::string& name, std::optional<int> replicas) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "UPDATE deployments SET replicas_pin = ?2 WHERE name = ?1");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  s.Bind(1, name);
  if (replicas) s.Bind(2, int64_t{*replicas});
  else s.BindNull(2);
  int rc = s.Step();
  if (rc != SQLITE_DONE) return Error("store replica pin", rc);
  if (sqlite3_changes(db_) == 0) return NotFound("deployment '" + name + "' is not deployed");
  return Status::Ok();
}

Status StateStore::RecordRolloutEvent(const RolloutEvent& e) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "INSERT INTO rollout_events (ts_ms, deployment, generation, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  s.Bind(1, e.ts_ms ? e.ts_ms : static_cast<int64_t>(WallMillis())).Bind(2, e.deployment).Bind(3, e.generation);
  s.Bind(4, e.kind).Bind(5, e.message);
  int rc = s.Step();
  if (rc != SQLITE_DONE) return Error("record rollout event", rc);
  return Status::Ok();
}

Result<std::vector<RolloutEvent>> StateStore::RolloutEvents(const std::string& deployment, int limit) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "SELECT ts_ms, deployment, generation, kind, message FROM rollout_events WHERE deployment = ?1 "
         "ORDER BY id DESC LIMIT ?2");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  s.Bind(1, deployment).Bind(2, int64_t{limit});
  std::vector<RolloutEvent> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Int(0), s.Text(1), s.Int(2), s.Text(3), s.Text(4)});
  if (rc != SQLITE_DONE) return Error("read rollout events", rc);
  return out;
}

Status StateStore::ExecForTesting(const std::string& sql) {
  std::lock_guard lock(mu_);
  return Exec(sql.c_str());
}

Status StateStore::RecordScaleEvent(const ScaleEvent& e) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "INSERT INTO scale_events (ts_ms, deployment, revision, from_replicas, to_replicas, reason) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  s.Bind(1, e.ts_ms ? e.ts_ms : static_cast<int64_t>(WallMillis())).Bind(2, e.deployment).Bind(3, e.revision);
  s.Bind(4, int64_t{e.from}).Bind(5, int64_t{e.to}).Bind(6, e.reason);
  int rc = s.Step();
  if (rc != SQLITE_DONE) return Error("record scale event", rc);
  return Status::Ok();
}

Status StateStore::RecordRestart(const RestartEvent& e) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "INSERT INTO restarts (ts_ms, deployment, revision, replica, pid, exit, log_tail) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  s.Bind(1, e.ts_ms ? e.ts_ms : static_cast<int64_t>(WallMillis())).Bind(2, e.deployment).Bind(3, e.revision);
  s.Bind(4, int64_t{e.replica}).Bind(5, e.pid).Bind(6, e.exit).Bind(7, e.log_tail);
  int rc = s.Step();
  if (rc != SQLITE_DONE) return Error("record restart", rc);
  return Status::Ok();
}

Result<std::vector<ScaleEvent>> StateStore::ScaleEvents(const std::string& deployment, int limit) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "SELECT ts_ms, deployment, revision, from_replicas, to_replicas, reason FROM scale_events "
         "WHERE deployment = ?1 ORDER BY id DESC LIMIT ?2");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  s.Bind(1, deployment).Bind(2, int64_t{limit});
  std::vector<ScaleEvent> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW)
    out.push_back({s.Int(0), s.Text(1), s.Text(2), static_cast<int>(s.Int(3)), static_cast<int>(s.Int(4)), s.Text(5)});
  if (rc != SQLITE_DONE) return Error("read scale events", rc);
  return out;
}

Result<std::vector<RestartEvent>> StateStore::Restarts(const std::string& deployment, int limit) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "SELECT ts_ms, deployment, revision, replica, pid, exit, log_tail FROM restarts "
         "WHERE deployment = ?1 ORDER BY id DESC LIMIT ?2");
  if (s.rc() != SQLITE_OK) return Error("prepare", s.rc());
  s.Bind(1, deployment).Bind(2, int64_t{limit});
  std::vector<RestartEvent> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW)
    out.push_back({s.Int(0), s.Text(1), s.Text(2), static_cast<int>(s.Int(3)), s.Int(4), s.Text(5), s.Text(6)});
  if (rc != SQLITE_DONE) return Error("read restarts", rc);
  return out;
}

}  // namespace ferry::engine
