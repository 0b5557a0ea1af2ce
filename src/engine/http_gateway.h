#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "engine/gateway_trace.h"
#include "engine/router.h"

namespace ferry::engine {

struct HttpGatewayOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 8080;
  int threads = 0;           // event loops (the Http1Server's); 0 = one per core. A request's
                             // upstream exchange runs on its client connection's loop
  uint64_t max_body_bytes = 64ull << 20;
  std::string version;       // for GET /v2
  GatewayTracing tracing;    // the engine's spans (exporter null: off); see GatewayTrace
};

// The engine's REST gateway: speaks the Open Inference Protocol as `ferry serve` does and
// forwards /v2/models/{name}/... to a replica of the deployment serving that model,
// bytes as they are (path, headers, body; no tensor decoding). The client side is an
// Http1Server and the replica's answer is framed with http1_framing: no HTTP message
// object is built on either side, and a body is never copied between the sockets' buffers
// (one that came chunked is decoded once). Per request:
//  1. admission: over the deployment's max_in_flight -> 503 with Retry-After;
//  2. Router::Pick (weighted revision, power of two choices on outstanding requests);
//     with no ready replica (scaled to zero, all restarting) the request waits at the
//     gateway, counted as demand for the autoscaler, up to gateway.cold_start_timeout;
//     then, or at once when every revision with traffic is degraded, 503 + Retry-After;
//  3. a pooled keep-alive connection to the replica, or a new one;
//  4. a failure before any response byte (refused, reset, closed: a replica died, or a
//     pooled connection went stale) is retried once on another replica when there is one,
//     else on a new connection to the same one; inference is idempotent, so this costs a
//     killed replica no client-visible error. A timeout (request_timeout) is 504, not retried.
// Responses carry `Ferry-Revision: <revision>`, the revision that answered.
// Its own endpoints: /v2/health/live, /v2/health/ready (every deployment whose minimum is
// above zero has a routable replica), GET /v2, POST /v2/repository/index (the models of
// every deployment, READY when routable). Unknown models get 404 as in `ferry serve`.
// Thread-safety: Start and Stop are called by one owner thread; requests run on the
// HTTP loops, each wholly on the loop of its client connection.
class HttpGateway {
 public:
  // router: not owned, must outlive the gateway.
  static Result<std::unique_ptr<HttpGateway>> Create(HttpGatewayOptions options, Router* router);
  ~HttpGateway();

  Status Start();
  uint16_t port() const;
  // Stops accepting, lets requests in flight finish up to grace_ms, then stops the loops.
  void Stop(int grace_ms);

  struct Counters {
    uint64_t requests = 0;
    uint64_t retries = 0;           // upstream failures before a response byte, retried
    uint64_t upstream_errors = 0;   // requests that failed after the retry
  };
  Counters counters() const;

 private:
  struct Impl;
  explicit HttpGateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::engine
