#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "engine/deployment_controller.h"
#include "engine/spec.h"
#include "engine/state_store.h"
#include "frontend/http/http_server.h"

namespace ferry::engine {

struct AdminApiOptions {
  std::string address = "127.0.0.1";  // loopback by default: the API changes what runs
  uint16_t port = 8090;
};

// A change asked for through the admin API, validated, for the control thread to apply.
struct AdminCommand {
  enum class Kind { kApply, kDelete, kScale };
  Kind kind = Kind::kApply;
  std::vector<DeploymentSpec> specs;  // kApply: parsed and validated
  std::string spec_file;              // kApply: stored with them (anchors relative paths on restart)
  bool prune = false;                 // kApply: delete the stored deployments the spec lacks
  std::string deployment;             // kDelete, kScale
  std::optional<int> replicas;        // kScale: pin at this count; nullopt: autoscale again
};

// What the admin API needs of the engine.
class AdminBackend {
 public:
  virtual ~AdminBackend() = default;
  // Thread-safe: the status document (GET /v1/status).
  virtual std::string StatusJson() = 0;
  // Thread-safe: one deployment (GET /v1/deployments/{name}); nullopt when unknown.
  virtual std::optional<std::string> DeploymentJson(const std::string& name) = 0;
  // Thread-safe: a replica's log file (DeploymentController::ResolveLogs).
  virtual Result<LogTarget> ResolveLogs(const std::string& name, const std::optional<std::string>& revision,
                                        std::optional<int> replica) = 0;
  // Applies `command` on the engine's control thread, one command at a time, and calls
  // `done` (on that thread) with the answer's JSON body or the error. The change is
  // stored before `done` is called.
  virtual void Submit(AdminCommand command, std::function<void(Result<std::string>)> done) = 0;
};

// The body of GET /v1/targets from a status document (Engine::StatusJson): Prometheus's
// http_sd_configs format, [{"targets": ["127.0.0.1:PORT"], "labels": {...}}], one group for
// the engine (ferry_role=engine) and one per replica with a process (ferry_role=replica,
// deployment, revision, replica). Pure; used by the handler and tests.
std::string ScrapeTargets(const std::string& status_json);

// The engine's admin API (REST/JSON, docs/engine.md has the table):
//   GET    /v1/status                             every deployment, revision instance and replica
//   GET    /v1/targets                            Prometheus HTTP service discovery: the engine's and every
//                                                  running replica's metrics endpoint, labelled
//   POST   /v1/apply[?base=DIR&file=F&prune=1]    a whole spec (YAML or JSON): create or update each deployment
//   GET    /v1/deployments                        the stored deployments
//   GET    /v1/deployments/{name}                 one deployment: generations, rollout, spec, replicas
//   PUT    /v1/deployments/{name}[?base=&file=]   one deployment's spec (YAML or JSON mapping)
//   DELETE /v1/deployments/{name}                 unroute, drain and stop its replicas
//   POST   /v1/deployments/{name}/scale           {"replicas": N} pins N per revision; {"auto": true} unpins
//   GET    /v1/deployments/{name}/events[?limit=N]
//   GET    /v1/deployments/{name}/logs[?revision=R&replica=I&tail=N | &offset=B]
// Reads are answered on the API's loop; changes are parsed and validated there (spec
// errors: 400 with file:line:col and the field path), then applied by the control thread
// one at a time (Submit), stored in SQLite before the answer. Errors are {"error": ...}:
// 400 naming the field or parameter, 404 unknown deployment or path, 405 (with Allow),
// 409 a model served by another deployment, 500 a state database error (SQLite's message:
// disk full, locked by another process).
// Thread-safety: Start and Stop by one owner thread; requests run on one loop thread.
class AdminApi {
 public:
  // backend and store: not owned, outlive the API.
  static Result<std::unique_ptr<AdminApi>> Create(AdminApiOptions options, AdminBackend* backend, StateStore* store);
  Status Start();
  uint16_t port() const { return server_->port(); }
  void Stop() { server_->Stop(1000); }

  // The handler alone, for tests without sockets. Answers through `respond`, at once or
  // (changes) once the backend is done.
  static void Handle(const frontend::http::Request& req, AdminBackend* backend, StateStore* store,
                     frontend::http::Responder respond);
  // Runs a command on the controller (the control thread's side of Submit): the answer's JSON.
  static Result<std::string> Execute(AdminCommand command, DeploymentController& controller);

  // Request bodies, parsed (exposed for tests).
  static Result<std::optional<int>> ParseScaleBody(std::string_view body);

 private:
  explicit AdminApi(std::unique_ptr<frontend::http::HttpServer> server) : server_(std::move(server)) {}
  std::unique_ptr<frontend::http::HttpServer> server_;
};

// The HTTP status for a Status of the admin API: 400, 404, 409, else 500.
int AdminHttpStatus(const Status& s);

}  // namespace ferry::engine
