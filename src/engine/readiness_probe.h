#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace ferry::engine {

struct HttpReply {
  int status = 0;
  std::string head;  // status line and header fields, as received
  std::string body;
};

// One blocking HTTP/1.1 exchange with 127.0.0.1:port (Connection: close), for the
// supervisor's probes; never used on the request path. Fails with Unavailable on a refused
// or reset connection and DeadlineExceeded past `timeout` (connect, send and receive together).
// Thread-safety: thread-safe.
Result<HttpReply> LoopbackHttp(uint16_t port, const std::string& method, const std::string& path,
                               const std::string& body, std::chrono::milliseconds timeout);

// What a readiness probe of a replica found.
struct Readiness {
  bool ready = false;
  // Set when a model of the revision failed to load (state UNAVAILABLE with a reason):
  // the replica will not become ready by waiting.
  std::string failure;
  std::string detail;  // why not ready yet, for logs
};

// OK when 127.0.0.1:port accepts a TCP connection within `timeout` (closed at once).
Status LoopbackAccepts(uint16_t port, std::chrono::milliseconds timeout);

// Ready when GET /v2/health/ready answers 200 on `port`, POST /v2/repository/index lists
// every one of `models` as READY, and `grpc_port` (unless 0) accepts connections.
Readiness ProbeReplica(uint16_t port, uint16_t grpc_port, const std::vector<std::string>& models,
                       std::chrono::milliseconds timeout);

}  // namespace ferry::engine
