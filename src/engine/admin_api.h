#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "engine/state_store.h"
#include "frontend/http/http_server.h"

namespace ferry::engine {

struct AdminApiOptions {
  std::string address = "127.0.0.1";  // loopback by default: the API changes nothing yet, but will
  uint16_t port = 8090;
};

// The engine's admin API (REST/JSON), read-only for now:
//   GET /v1/status                          every revision and replica (as status.json)
//   GET /v1/deployments                     the stored deployments: name, generation, spec file
//   GET /v1/deployments/{name}/events[?limit=N]   newest scale events and restarts (N: 1-1000, default 20)
// Errors are JSON {"error": ...}: 404 for an unknown path or deployment, 400 naming a bad
// query parameter, 405 for another method.
// Thread-safety: Start and Stop by one owner thread; requests run on one loop thread.
class AdminApi {
 public:
  // status: returns the status document; called on the API's thread. store: not owned.
  static Result<std::unique_ptr<AdminApi>> Create(AdminApiOptions options, std::function<std::string()> status,
                                                  StateStore* store);
  Status Start();
  uint16_t port() const { return server_->port(); }
  void Stop() { server_->Stop(1000); }

  // The handler alone, for tests without sockets.
  static frontend::http::Response Handle(const frontend::http::Request& req, const std::function<std::string()>& status,
                                         StateStore* store);

 private:
  explicit AdminApi(std::unique_ptr<frontend::http::HttpServer> server) : server_(std::move(server)) {}
  std::unique_ptr<frontend::http::HttpServer> server_;
};

}  // namespace ferry::engine
