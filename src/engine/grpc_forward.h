#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <string_view>

#include "engine/gateway_trace.h"
#include "engine/router.h"
#include "frontend/grpc/cq_tag.h"

// Internal to the gRPC gateway (grpc_gateway.cc): the calls it forwards to replicas.
namespace ferry::engine::grpc_forward {

// The inference methods the gateway answers itself (ServerLive, RepositoryIndex, ...;
// grpc_gateway.cc). They reach the generic service as bytes too, so the server runs no
// callback-API service: one of those makes gRPC start its own polling threads
// ("nexting" threads of the callback queue), which then read the sockets and hand every
// completion to the gateway's queue thread with a wake-up (43% of the gateway's CPU in a
// profile under the bench's load).
// Thread-safety: Answer is called from every queue thread at once.
class LocalMethods {
 public:
  virtual ~LocalMethods() = default;
  // Whether `method` (the call's full path) is one of them.
  virtual bool Handles(std::string_view method) const = 0;
  // Answers one request: the status, and when OK the serialized response in `response`.
  virtual ::grpc::Status Answer(std::string_view method, const ::grpc::ByteBuffer& request,
                                ::grpc::ByteBuffer* response) = 0;
};

// What forwarded calls share: lives as long as the gateway's server.
// Thread-safety: the counters are atomics; the rest is set before the first call.
struct ForwardCore {
  Router* router = nullptr;  // not owned
  LocalMethods* local = nullptr;  // not owned; null: every other method is UNIMPLEMENTED
  GatewayTracing tracing;    // the engine's (exporter null: off)
  ::grpc::AsyncGenericService generic;
  ::grpc::ChannelArguments upstream_args;  // for the channels to replicas
  std::atomic<uint64_t> requests{0}, retries{0}, upstream_errors{0};
  std::atomic<int> calls{0};  // calls alive: accepted (or armed) and not yet freed
};

// A completion-queue tag: operation `op` of the call `handler`. The format `ferry serve`'s
// queues use, so the gateway's queues also carry the shared health and reflection calls.
using TagHandler = frontend::grpc::CqHandler;
using Tag = frontend::grpc::CqTag;

// The replica's channel, made on first use. Shared by every gateway thread: one HTTP/2
// connection per replica carries all their calls.
std::shared_ptr<::grpc::Channel> ChannelTo(const ForwardCore& core, ReplicaEndpoint& ep);

// Arms `cq` to accept one more call of the generic service (a forwarded method, or an
// unknown one: answered UNIMPLEMENTED). Each accepted call re-arms its queue.
// REQUIRES: the server is started and `cq` is not shut down.
void AcceptOn(ForwardCore* core, ::grpc::ServerCompletionQueue* cq);

// Queues are polled with frontend::grpc::PollQueue, one thread per queue: every event of
// a forwarded call (its client side and its upstream side) comes back on its queue, so a
// call is only ever touched by that thread.

}  // namespace ferry::engine::grpc_forward
