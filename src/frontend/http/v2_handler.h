#pragma once


#include <memory>

#include "core/worker_pool.h"
#include "frontend/http/http_server.h"
#include "server/server.h"

namespace ferry::frontend::http {

struct V2HandlerOptions {
  uint64_t max_body_bytes = 64ull << 20;  // also caps decompressed bodies
  std::string server_name = "ferry";
  std::string server_version;
};

// The Open Inference Protocol over REST: routes a request to the Server facade and
// encodes the answer. Holds no per-request state, so it is testable without sockets.
// Repository load/unload (which block for a model load) run on a private control
// thread, never on the IO thread that called Handle.
// Thread-safety: Handle may be called concurrently from every IO thread.
class V2Handler {
 public:
  V2Handler(server::Server* server, V2HandlerOptions options);  // server: not owned
  ~V2Handler();

  void Handle(Request&& request, Responder respond, ClientGone client_gone = {});

 private:
  enum class Call { kInfer, kExplain };
  // POST .../infer, or .../explain (the same body; answered by Server::Explain).
  void Infer(Request&& req, std::string model, std::string version, Responder respond, ClientGone client_gone,
             Call call);
  Response Statistics(const std::string& model, const std::string& version);
  void Repository(Request&& req, const std::string& action, std::string model, Responder respond);

  server::Server* server_;
  const V2HandlerOptions options_;
  // Repository load/unload, off the IO threads; its thread starts with the first such
  // request and ends when idle. Last member: destroyed first, after queued work ran.
  WorkerPool control_{WorkerPoolOptions{1, std::chrono::seconds(10)}};
};

// The metrics endpoint: GET /metrics in the Prometheus text format.
Handler MetricsHandler(server::Server* server);

// Builds a JSON error response {"error": message}.
Response ErrorResponse(int status, std::string_view message);
Response StatusResponse(const Status& status);

}  // namespace ferry::frontend::http
