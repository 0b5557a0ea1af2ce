#pragma once

#include <memory>

#include "core/result.h"
#include "frontend/grpc/grpc_server.h"
#include "server/server.h"

namespace ferry::frontend::grpc_native {

// The same gRPC services as grpc::GrpcServer (GRPCInferenceService, grpc.health.v1.Health,
// reflection; unknown methods UNIMPLEMENTED), on ferry's own transport instead of
// grpc++: Boost.Asio event loops (one per core, as the REST server's) and libnghttp2
// for HTTP/2. The method logic above the transport is shared with GrpcServer
// (InferenceMethods, HealthService, ReflectionService, grpc_codec), as are the
// per-method counters (ferry_grpc_requests_total). `ferry serve --grpc-transport native`.
// Thread-safety: Start/Shutdown are called by one owner thread.
class NativeGrpcServer {
 public:
  static Result<std::unique_ptr<NativeGrpcServer>> Create(grpc::GrpcServerOptions options, server::Server* server);
  ~NativeGrpcServer();

  // Binds and starts serving; fails naming the address when the port is taken.
  Status Start();
  uint16_t port() const;
  // Marks health NOT_SERVING (ending Watch streams), sends GOAWAY on every connection,
  // waits up to `grace_ms` for their calls, then closes what is left and stops.
  void Shutdown(int grace_ms);

 private:
  struct Impl;
  explicit NativeGrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::frontend::grpc_native
