#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "batch/infer_backend.h"
#include "core/result.h"

namespace ferry::batch {

struct RemoteOptions {
  std::string url;       // http://HOST:PORT (REST) or grpc://HOST:PORT of a V2 endpoint
  int concurrency = 4;   // connections, each with one request in flight
  int retries = 10;      // further tries of a request after a connection error or a 5xx
  std::chrono::milliseconds backoff_initial{100};  // the first wait; doubled after each try
  std::chrono::milliseconds backoff_max{5000};     // the cap on one wait
  std::chrono::milliseconds timeout{60000};        // connect + send + receive, one try
};

// Sends a batch job's requests to a remote V2 (Open Inference Protocol) endpoint:
// REST (http://HOST:PORT, with the binary tensor extension both ways) or gRPC
// (grpc://HOST:PORT, raw_input_contents / raw_output_contents), so the tensors' bytes
// travel exactly (no float text). Resolve reads the model's versions (REST GET
// /v2/models/NAME, gRPC ModelMetadata) and config (GET .../versions/V/config, gRPC
// ModelConfig: max_batch_size, inputs and outputs, the Triton/ferry config extension).
// Each of `concurrency` worker threads has one request in flight: over its own
// keep-alive HTTP/1.1 connection, or on the one gRPC channel. A try that gets no
// answer (connect, send, receive, timeout), a 5xx, or gRPC UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED, ABORTED, INTERNAL or UNKNOWN is retried after a capped exponential
// back-off; after `retries` more tries the request fails with UNAVAILABLE, which
// StopsTheJob. Any other error (a 4xx, INVALID_ARGUMENT, NOT_FOUND ...) fails the
// request with INVALID_ARGUMENT and the server's message, not retried.
// Thread-safety: Infer from any thread; callbacks run on the worker threads.
class RemoteV2Backend : public InferBackend {
 public:
  // INVALID_ARGUMENT for a URL that is not http://HOST:PORT or grpc://HOST:PORT.
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
