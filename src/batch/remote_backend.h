#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "batch/infer_backend.h"
#include "core/result.h"

namespace ferry::batch {

struct RemoteOptions {
  std::string url;       // http://host:port of a V2 (Open Inference Protocol) REST endpoint
  int concurrency = 4;   // connections, each with one request in flight
  int retries = 10;      // further tries of a request after a connection error or a 5xx
  std::chrono::milliseconds backoff_initial{100};  // the first wait; doubled after each try
  std::chrono::milliseconds backoff_max{5000};     // the cap on one wait
  std::chrono::milliseconds timeout{60000};        // connect + send + receive, one try
};

// Sends a batch job's requests to a remote V2 REST endpoint (`ferry serve`, Triton,
// KServe, MLServer) with the binary tensor extension both ways, so the tensors' bytes
// travel exactly (no float text). Resolve reads GET /v2/models/NAME (versions) and
// GET /v2/models/NAME/versions/V/config (max_batch_size, inputs and outputs as in
// config.pbtxt: the Triton/ferry config extension). Each of `concurrency` worker threads
// keeps one keep-alive connection. A try that cannot connect, loses the connection, times
// out or gets a 5xx is retried after a capped exponential back-off (reconnecting);
// after `retries` more tries the request fails with UNAVAILABLE, which StopsTheJob. A 4xx
// fails the request with INVALID_ARGUMENT and the server's error message, not retried.
// Thread-safety: Infer from any thread; callbacks run on the worker threads.
class RemoteV2Backend : public InferBackend {
 public:
  // INVALID_ARGUMENT for a URL that is not http://host:port (grpc:// is named as not
  // supported yet).
  static Result<std::unique_ptr<RemoteV2Backend>> Create(RemoteOptions options);
  ~RemoteV2Backend() override;  // answers queued requests with CANCELLED, joins

  Result<ResolvedModel> Resolve(const std::string& model, const std::string& version) override;
  void Infer(InferRequest request, InferCallback done) override;
  bool StopsTheJob(const Status& s) const override { return s.code() == StatusCode::kUnavailable; }

 private:
  struct Impl;
  RemoteV2Backend() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::batch
