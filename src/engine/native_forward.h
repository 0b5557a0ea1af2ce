#pragma once

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

#include "engine/gateway_trace.h"
#include "engine/grpc_forward.h"
#include "engine/grpc_forward_policy.h"
#include "engine/grpc_upstream.h"
#include "engine/router.h"
#include "engine/upstream_sessions.h"
#include "frontend/grpc_native/native_call.h"

// Internal to the gRPC gateway's native transport (grpc_gateway.cc with
// --grpc-transport native): its forwarded calls, on ferry's nghttp2 transport both sides.
namespace ferry::engine::grpc_forward {

// What the native transport's forwarded calls share: lives as long as the gateway.
// Thread-safety: the counters are atomics; the rest is set before the first call.
struct NativeForwardCore {
  Router* router = nullptr;       // not owned
  LocalMethods* local = nullptr;  // not owned
  GatewayTracing tracing;
  UpstreamSessions sessions;
  std::atomic<uint64_t> requests{0}, retries{0}, upstream_errors{0};
};

// A forwarded method (ModelInfer, ModelStreamInfer, ModelMetadata, ModelReady,
// ModelConfig; ModelStatistics gathered from every ready replica): the gateway's routing
// as the grpc++ transport's Call does it (grpc_gateway.h), the request messages relayed
// unchanged to the picked replica over its GrpcUpstreamSession.
std::unique_ptr<frontend::grpc_native::CallHandler> NewNativeForward(NativeForwardCore* core,
                                                                    const MethodInfo* method);
// A method core->local answers (ServerLive, RepositoryIndex, ...), by its full path.
std::unique_ptr<frontend::grpc_native::CallHandler> NewNativeLocal(NativeForwardCore* core, std::string_view path);

}  // namespace ferry::engine::grpc_forward
