#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "server/server.h"

namespace ferry::frontend::grpc {

struct GrpcServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 8001;
  int max_message_bytes = 64 << 20;  // both directions; larger messages get RESOURCE_EXHAUSTED
  std::string server_name = "ferry";
  std::string server_version;
};

// The Open Inference Protocol over gRPC (Triton's inference.GRPCInferenceService), plus
// the standard grpc.health.v1.Health service (one status per model name and "" for the
// server) and server reflection (grpc.reflection.v1alpha). Every RPC runs on completion
// queues polled by ferry's own threads (CallPollers, one per core), so gRPC runs no
// callback or sync executor threads: handlers only decode, hand the request to the
// Server facade and return; completions finish the call from the worker thread.
// Repository load/unload run on a private control thread.
// Thread-safety: Start/Shutdown are called by one owner thread.
class GrpcServer {
 public:
  static Result<std::unique_ptr<GrpcServer>> Create(GrpcServerOptions options, server::Server* server);
  ~GrpcServer();

  // Binds and starts serving; fails naming the address when the port is taken.
  Status Start();
  uint16_t port() const;
  // Marks health NOT_SERVING, waits up to `grace_ms` for calls in flight, then stops.
  void Shutdown(int grace_ms);

 private:
  struct Impl;
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::frontend::grpc
