#include "engine/supervisor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "core/log.h"
#include "engine/child_process.h"
#include "engine/readiness_probe.h"

namespace ferry::engine {
namespace fs = std::filesystem;
namespace {

uint64_t Nanos(Millis m) { return static_cast<uint64_t>(m.count()) * 1'000'000; }

// Free loopback ports, held open together so they differ. Another process may take one
// before the replica binds it; the replica then fails to start and is restarted on others.
Result<std::vector<uint16_t>> FreePorts(int n) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  Status err;
  for (int i = 0; i < n && err.ok(); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      err = Internal("cannot pick a loopback port: " + std::string(std::strerror(errno)));
    } else {
      ports.push_back(ntohs(a.sin_port));
    }
    if (fd >= 0) fds.push_back(fd);
  }
  for (int fd : fds) ::close(fd);
  if (!err.ok()) return err;
  return ports;
}

}  // namespace

std::string_view ReplicaStateName(ReplicaState s) {
  switch (s) {
    case ReplicaState::kStarting: return "starting";
    case ReplicaState::kReady: return "ready";
    case ReplicaState::kBackoff: return "backoff";
    case ReplicaState::kDraining: return "draining";
    case ReplicaState::kStopping: return "stopping";
  }
  return "unknown";
}

struct Supervisor::Replica {
  int index = 0;
  ReplicaState state = ReplicaState::kBackoff;
  pid_t pid = -1;
  uint16_t http_port = 0;
  uint16_t metrics_port = 0;  // the replica's Prometheus endpoint
  std::shared_ptr<ReplicaEndpoint> endpoint;  // null while no process runs
  std::shared_ptr<RotatingLog> log;
  std::shared_ptr<std::atomic<bool>> output_eof;
  uint64_t since = 0;          // entered the current state
  uint64_t next_probe = 0;
  uint64_t restart_at = 0;     // kBackoff: when to start again
  bool killed = false;         // kStopping: SIGKILL already sent
  bool retire = false;         // scaled down: remove once the process is gone
  std::string kill_reason;     // why the supervisor killed a starting replica
  int consecutive_failures = 0;
  int restarts = 0;
};

struct Supervisor::Revision {
  std::shared_ptr<const DeploymentSpec> deployment;
  const RevisionSpec* spec = nullptr;  // inside *deployment
  std::string key;                     // this instance's name: the revision's by default
  std::vector<std::string> repositories;  // --model-repository values
  int desired = 0;
  std::vector<std::unique_ptr<Replica>> replicas;  // ordered by index
  std::deque<uint64_t> failures;                   // times, within the crash-loop window
  uint64_t restarts_total = 0;
  bool degraded = false;
  std::string degraded_reason;
  std::shared_ptr<RevisionLoad> load = std::make_shared<RevisionLoad>();
};

Supervisor::Supervisor(SupervisorOptions options, StateStore* store, const Clock* clock)
    : options_(std::move(options)), store_(store), clock_(clock) {
  // argv[0] is the binary's real path, for a replica that finds files beside itself
  // (runtime modules, the Python SDK) from it.
  std::error_code ec;
  fs::path real = fs::canonical(options_.binary, ec);
  argv0_ = ec ? options_.binary : real.string();
}

Supervisor::~Supervisor() {
  for (auto& rev : revisions_)
    for (auto& r : rev->replicas)
      if (r->pid > 0) {
        ::kill(r->pid, SIGKILL);
        int st;
        ::waitpid(r->pid, &st, 0);
      }
}

Supervisor::Revision* Supervisor::Find(const std::string& deployment, const std::string& revision) const {
  for (const auto& r : revisions_)
    if (r->deployment->name == deployment && r->key == revision) return r.get();
  return nullptr;
}

Status Supervisor::AddRevision(std::shared_ptr<const DeploymentSpec> deployment, const std::string& revision,
                               int initial, const std::string& key_arg) {
  const std::string key = key_arg.empty() ? revision : key_arg;
  if (Find(deployment->name, key)) return Status(StatusCode::kAlreadyExists, deployment->name + "/" + key + " is supervised");
  auto rev = std::make_unique<Revision>();
  rev->key = key;
  for (const auto& r : deployment->revisions)
    if (r.name == revision) rev->spec = &r;
  if (!rev->spec) return NotFound("deployment '" + deployment->name + "' has no revision '" + revision + "'");
  rev->repositories = rev->spec->model_repositories;
  if (!rev->spec->model_folders.empty()) {
    // Single model folders are served through a repository of links to them.
    fs::path repo = fs::path(options_.state_dir) / "revisions" / deployment->name / key / "models";
    std::error_code ec;
    fs::remove_all(repo, ec);
    fs::create_directories(repo, ec);
    if (ec) return Internal("cannot create '" + repo.string() + "': " + ec.message());
    for (const auto& folder : rev->spec->model_folders) {
      fs::create_directory_symlink(folder, repo / fs::path(folder).filename(), ec);
      if (ec) return Internal("cannot link '" + folder + "' into '" + repo.string() + "': " + ec.message());
    }
    rev->repositories.push_back(repo.string());
  }
  rev->deployment = std::move(deployment);
  rev->desired = initial;
  revisions_.push_back(std::move(rev));
  Publish();
  return Status::Ok();
}

Status Supervisor::UpdateDeployment(const std::string& revision, std::shared_ptr<const DeploymentSpec> deployment) {
  Revision* rev = Find(deployment->name, revision);
  if (!rev) return NotFound(deployment->name + "/" + revision + " is not supervised");
  const RevisionSpec* spec = nullptr;
  for (const auto& r : deployment->revisions)
    if (r.name == rev->spec->name) spec = &r;
  if (!spec) return NotFound("deployment '" + deployment->name + "' has no revision '" + rev->spec->name + "'");
  rev->deployment = std::move(deployment);
  rev->spec = spec;
  Publish();
  return Status::Ok();
}

bool Supervisor::RemoveRevision(const std::string& deployment, const std::string& revision) {
  auto it = std::find_if(revisions_.begin(), revisions_.end(), [&](const auto& r) {
    return r->deployment->name == deployment && r->key == revision;
  });
  if (it == revisions_.end()) return true;
  if (!(*it)->replicas.empty()) return false;
  if (!(*it)->spec->model_folders.empty()) {
    std::error_code ec;
    fs::remove_all(fs::path(options_.state_dir) / "revisions" / deployment / revision, ec);
  }
  revisions_.erase(it);
  Publish();
  return true;
}

void Supervisor::SetDesired(const std::string& deployment, const std::string& revision, int replicas) {
  if (Revision* r = Find(deployment, revision)) r->desired = std::max(0, replicas);
}

int Supervisor::Desired(const std::string& deployment, const std::string& revision) const {
  Revision* r = Find(deployment, revision);
  return r ? r->desired : 0;
}

void Supervisor::Spawn(Revision& rev, Replica& r) {
  const DeploymentSpec& d = *rev.deployment;
  const uint64_t now = clock_->NowNanos();
  const std::string id = d.name + "/" + rev.spec->name + "/" + std::to_string(r.index);
  if (!r.log) {
    fs::path path = fs::path(options_.state_dir) / "logs" / d.name / rev.spec->name /
                    ("replica-" + std::to_string(r.index) + ".log");
    r.log = std::make_shared<RotatingLog>(path.string(), options_.log_max_bytes, options_.log_keep);
  }
  auto ports = FreePorts(3);
  if (!ports.ok()) return Fail(rev, r, ports.status().message());
  LaunchSpec launch;
  launch.binary = options_.binary;
  launch.argv = {argv0_, "serve"};
  for (const auto& repo : rev.repositories) launch.argv.push_back("--model-repository=" + repo);
  launch.argv.push_back("--http-address=127.0.0.1");
  launch.argv.push_back("--http-port=" + std::to_string((*ports)[0]));
  launch.argv.push_back("--grpc-port=" + std::to_string((*ports)[1]));
  launch.argv.push_back("--metrics-port=" + std::to_string((*ports)[2]));
  for (const auto& [k, v] : rev.spec->serve_options) launch.argv.push_back("--" + k + "=" + v);
  for (const auto& [k, v] : options_.inherited_serve_options) {
    const auto& own = rev.spec->serve_options;
    if (std::none_of(own.begin(), own.end(), [&k = k](const auto& o) { return o.first == k; }))
      launch.argv.push_back("--" + k + "=" + v);
  }
  launch.env = options_.base_env;
  for (const auto& [k, v] : rev.spec->env) {
    const std::string prefix = k + "=";
    launch.env.erase(std::remove_if(launch.env.begin(), launch.env.end(),
                                    [&](const std::string& e) { return e.rfind(prefix, 0) == 0; }),
                     launch.env.end());
    launch.env.push_back(prefix + v);
  }
  if (!d.cpusets.empty()) launch.cpus = d.cpusets[static_cast<size_t>(r.index) % d.cpusets.size()];
  auto child = LaunchChild(launch);
  if (!child.ok()) return Fail(rev, r, child.status().message());
  r.pid = child->pid;
  r.http_port = (*ports)[0];
  r.metrics_port = (*ports)[2];
  r.output_eof = std::make_shared<std::atomic<bool>>(false);
  std::string cmd;
  for (const auto& a : launch.argv) cmd += (cmd.empty() ? "" : " ") + a;
  r.log->Note("started pid " + std::to_string(r.pid) + ": " + cmd);
  pump_.Add(child->output_fd, r.log, r.output_eof);
  r.endpoint = std::make_shared<ReplicaEndpoint>(id, r.http_port, (*ports)[1]);
  r.state = ReplicaState::kStarting;
  r.since = now;
  r.next_probe = now;
  r.killed = false;
  r.kill_reason.clear();
  FERRY_LOG(kInfo, "replica starting", ("replica", id)("pid", r.pid)("port", r.http_port));
}

// A replica failed (exited, or could not start): record it, schedule the restart.
void Supervisor::Fail(Revision& rev, Replica& r, const std::string& why) {
  const DeploymentSpec& d = *rev.deployment;
  const uint64_t now = clock_->NowNanos();
  const std::string tail = r.log ? r.log->Tail() : "";
  const std::string id = d.name + "/" + rev.spec->name + "/" + std::to_string(r.index);
  FERRY_LOG(kWarning, "replica failed", ("replica", id)("pid", r.pid)("reason", why));
  if (store_) {
    Status s = store_->RecordRestart({0, d.name, rev.spec->name, r.index, r.pid, why, tail});
    if (!s.ok()) FERRY_LOG(kWarning, "cannot record a restart", ("error", s.message()));
  }
  if (r.log) r.log->Note("replica pid " + std::to_string(r.pid) + " failed: " + why);
  ++r.restarts;
  ++rev.restarts_total;
  ++r.consecutive_failures;
  rev.failures.push_back(now);
  while (!rev.failures.empty() && now - rev.failures.front() > Nanos(d.restart.crash_loop_window))
    rev.failures.pop_front();
  if (static_cast<int>(rev.failures.size()) >= d.restart.crash_loop_failures) {
    if (!rev.degraded)
      FERRY_LOG(kError, "revision degraded: crash loop",
                ("deployment", d.name)("revision", rev.spec->name)("failures", rev.failures.size())("last", why));
    rev.degraded = true;
    rev.load->degraded = true;
    rev.degraded_reason = std::to_string(rev.failures.size()) + " replica failures within " +
                          std::to_string(d.restart.crash_loop_window.count() / 1000) + " s; last: " + why +
                          (tail.empty() ? "" : "; last log lines:\n" + tail);
  }
  // Back-off: initial, doubled per consecutive failure, capped.
  uint64_t delay = Nanos(d.restart.initial_backoff);
  for (int i = 1; i < r.consecutive_failures && delay < Nanos(d.restart.max_backoff); ++i) delay *= 2;
  delay = std::min(delay, Nanos(d.restart.max_backoff));
  if (r.endpoint) {
    r.endpoint->routable = false;
    r.endpoint->pool.Clear();
  }
  r.endpoint.reset();
  r.pid = -1;
  r.state = ReplicaState::kBackoff;
  r.since = now;
  r.restart_at = now + delay;
}

void Supervisor::OnExit(Revision& rev, Replica& r, int wstatus) {
  // Let the pump copy the last output first: it is the crash report.
  for (int i = 0; i < 40 && r.output_eof && !r.output_eof->load(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (r.state == ReplicaState::kDraining || r.state == ReplicaState::kStopping) {
    r.log->Note("replica pid " + std::to_string(r.pid) + " stopped: " + DescribeWaitStatus(wstatus));
    if (r.endpoint) r.endpoint->pool.Clear();
    r.endpoint.reset();
    r.pid = -1;
    r.state = ReplicaState::kBackoff;
    r.restart_at = clock_->NowNanos();  // a stop that is not a retirement restarts at once
    r.consecutive_failures = 0;
    return;
  }
  Fail(rev, r, r.kill_reason.empty() ? DescribeWaitStatus(wstatus) : r.kill_reason);
}

bool Supervisor::TickRevision(Revision& rev) {
  const DeploymentSpec& d = *rev.deployment;
  const uint64_t now = clock_->NowNanos();
  bool changed = false;
  for (auto& rp : rev.replicas) {
    Replica& r = *rp;
    if (r.pid > 0) {
      int st = 0;
      pid_t got = ::waitpid(r.pid, &st, WNOHANG);
      if (got == r.pid) {
        OnExit(rev, r, st);
        changed = true;
        continue;
      }
    }
    switch (r.state) {
      case ReplicaState::kStarting: {
        if (now < r.next_probe || !r.kill_reason.empty()) break;
        Readiness ready =
            ProbeReplica(r.http_port, r.endpoint->grpc_port, rev.spec->model_names, options_.probe_timeout);
        r.next_probe = clock_->NowNanos() + Nanos(d.health.probe_interval);
        if (ready.ready) {
          const uint64_t start_ms = (now - r.since) / 1'000'000;
          r.state = ReplicaState::kReady;
          r.since = now;
          r.consecutive_failures = 0;
          r.endpoint->routable = true;
          if (rev.degraded) FERRY_LOG(kInfo, "revision recovered", ("deployment", d.name)("revision", rev.spec->name));
          rev.degraded = false;
          rev.load->degraded = false;
          rev.degraded_reason.clear();
          r.log->Note("replica pid " + std::to_string(r.pid) + " is ready");
          FERRY_LOG(kInfo, "replica ready", ("replica", r.endpoint->id)("pid", r.pid)("port", r.http_port)
                                                ("start_ms", start_ms));
          changed = true;
        } else if (!ready.failure.empty() || now - r.since > Nanos(d.health.ready_timeout)) {
          r.kill_reason = !ready.failure.empty()
                              ? ready.failure
                              : "not ready after " + std::to_string(d.health.ready_timeout.count() / 1000) +
                                    " s (" + ready.detail + ")";
          ::kill(r.pid, SIGKILL);
        }
        break;
      }
      case ReplicaState::kBackoff:
        if (!r.retire && now >= r.restart_at) {
          Spawn(rev, r);
          changed = true;
        }
        break;
      case ReplicaState::kDraining:
        if (r.endpoint->outstanding.load() == 0 || now - r.since >= Nanos(d.drain.grace)) {
          ::kill(r.pid, SIGTERM);
          r.state = ReplicaState::kStopping;
          r.since = now;
        }
        break;
      case ReplicaState::kStopping:
        if (!r.killed && now - r.since >= Nanos(d.drain.kill_after)) {
          ::kill(r.pid, SIGKILL);
          r.killed = true;
        }
        break;
      case ReplicaState::kReady:
        break;
    }
  }

  // Scale: retire the highest indexes first, the ones not serving before the ready ones.
  int active = 0;
  for (const auto& r : rev.replicas) active += !r->retire;
  for (int pass = 0; pass < 2 && active > rev.desired; ++pass) {
    for (auto it = rev.replicas.rbegin(); it != rev.replicas.rend() && active > rev.desired; ++it) {
      Replica& r = **it;
      if (r.retire || (pass == 0 && r.state == ReplicaState::kReady)) continue;
      r.retire = true;
      --active;
      if (r.state == ReplicaState::kStarting) {
        ::kill(r.pid, SIGTERM);
        r.state = ReplicaState::kStopping;
        r.since = now;
      } else if (r.state == ReplicaState::kReady) {
        r.endpoint->routable = false;
        r.state = ReplicaState::kDraining;
        r.since = now;
      }
      changed = true;
    }
  }
  while (active < rev.desired) {
    // Indexes are unique across the instances of one revision (a rolling update runs two),
    // so each replica has its own log file.
    std::set<int> used;
    for (const auto& other : revisions_)
      if (other->deployment->name == d.name && other->spec->name == rev.spec->name)
        for (const auto& r : other->replicas) used.insert(r->index);
    // A slot being retired may be revived rather than starting a new one beside it.
    auto revive = std::find_if(rev.replicas.begin(), rev.replicas.end(), [](const auto& r) { return r->retire; });
    if (revive != rev.replicas.end() && (*revive)->state == ReplicaState::kBackoff) {
      (*revive)->retire = false;
      ++active;
      continue;
    }
    auto r = std::make_unique<Replica>();
    while (used.count(r->index)) ++r->index;
    r->retire = false;
    r->state = ReplicaState::kBackoff;
    r->restart_at = now;
    Spawn(rev, *r);
    rev.replicas.push_back(std::move(r));
    std::sort(rev.replicas.begin(), rev.replicas.end(), [](const auto& a, const auto& b) { return a->index < b->index; });
    ++active;
    changed = true;
  }
  // Retired slots whose process is gone leave.
  auto gone = std::remove_if(rev.replicas.begin(), rev.replicas.end(),
                             [](const auto& r) { return r->retire && r->pid <= 0; });
  if (gone != rev.replicas.end()) {
    rev.replicas.erase(gone, rev.replicas.end());
    changed = true;
  }
  return changed;
}

bool Supervisor::Tick() {
  bool changed = false;
  for (auto& rev : revisions_) changed = TickRevision(*rev) || changed;
  Publish();
  return changed;
}

std::vector<std::shared_ptr<ReplicaEndpoint>> Supervisor::Endpoints(const std::string& deployment,
                                                                    const std::string& revision) const {
  std::vector<std::shared_ptr<ReplicaEndpoint>> out;
  if (Revision* rev = Find(deployment, revision))
    for (const auto& r : rev->replicas)
      if (r->endpoint) out.push_back(r->endpoint);
  return out;
}

std::shared_ptr<RevisionLoad> Supervisor::Load(const std::string& deployment, const std::string& revision) const {
  Revision* rev = Find(deployment, revision);
  return rev ? rev->load : nullptr;
}

int Supervisor::InFlight(const std::string& deployment, const std::string& revision) const {
  int n = 0;
  for (const auto& e : Endpoints(deployment, revision)) n += e->outstanding.load();
  return n;
}

int Supervisor::ReadyCount(const std::string& deployment, const std::string& revision) const {
  int n = 0;
  if (Revision* rev = Find(deployment, revision))
    for (const auto& r : rev->replicas) n += r->state == ReplicaState::kReady;
  return n;
}

void Supervisor::StopAll(std::chrono::milliseconds timeout) {
  for (auto& rev : revisions_) rev->desired = 0;
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    Tick();
    bool any = false;
    for (const auto& rev : revisions_) any = any || !rev->replicas.empty();
    if (!any) return;
    if (std::chrono::steady_clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& rev : revisions_)
    for (auto& r : rev->replicas)
      if (r->pid > 0) {
        FERRY_LOG(kWarning, "replica did not stop in time; killing it", ("pid", r->pid));
        ::kill(r->pid, SIGKILL);
        int st;
        ::waitpid(r->pid, &st, 0);
        r->pid = -1;
      }
}

void Supervisor::Publish() {
  std::vector<RevisionStatus> out;
  for (const auto& rev : revisions_) {
    RevisionStatus s;
    s.deployment = rev->deployment->name;
    s.revision = rev->spec->name;
    s.key = rev->key;
    s.desired = rev->desired;
    s.degraded = rev->degraded;
    s.restarts_total = rev->restarts_total;
    s.degraded_reason = rev->degraded_reason;
    for (const auto& r : rev->replicas) {
      ReplicaStatus rs;
      rs.index = r->index;
      rs.pid = r->pid;
      rs.http_port = r->http_port;
      rs.grpc_port = r->endpoint ? r->endpoint->grpc_port : 0;
      rs.metrics_port = r->pid > 0 ? r->metrics_port : 0;
      rs.state = r->state;
      rs.outstanding = r->endpoint ? r->endpoint->outstanding.load() : 0;
      rs.restarts = r->restarts;
      rs.log_path = r->log ? r->log->path() : "";
      s.ready += r->state == ReplicaState::kReady;
      s.replicas.push_back(std::move(rs));
    }
    out.push_back(std::move(s));
  }
  std::lock_guard lock(status_mu_);
  status_ = std::move(out);
}

std::vector<RevisionStatus> Supervisor::StatusReport() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

}  // namespace ferry::engine
