#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <optional>

#include "frontend/grpc/call_count_sink.h"
#include "frontend/grpc/cq_tag.h"
#include "protocol/grpc/grpc_service.grpc.pb.h"
#include "server/server.h"

namespace ferry::frontend::grpc {

// GRPCInferenceService with every method on the completion-queue API.
using InferenceAsyncService = inference::GRPCInferenceService::AsyncService;

// What the inference calls need; outlives every call armed with it (not owned).
struct InferenceCallEnv {
  InferenceAsyncService* service;
  server::Server* server;
  LiveCalls* live;
  CallCountSink* infer_calls;   // ModelInfer's finished calls, by status
  CallCountSink* stream_calls;  // ModelStreamInfer's finished streams
};

// ferry status -> gRPC status through protocol/error_map.h.
::grpc::Status ToGrpc(const Status& s);

// The W3C trace context of a call's `traceparent` metadata, if it carries a valid one.
std::optional<TraceContext> TraceParent(const std::multimap<::grpc::string_ref, ::grpc::string_ref>& metadata);

// Arms `cq` to accept one ModelInfer call; each accepted call arms the next. The polling
// thread reads the request and decodes it, then hands it to the Server facade (model
// work runs on the scheduler's instance threads, never here); the thread that completes
// it encodes the response and starts the write. A client that cancels or whose deadline
// passes marks the request cancelled, so queued work for it is dropped.
// REQUIRES: the server is started and `cq` is not shut down.
void ArmModelInfer(const InferenceCallEnv* env, ::grpc::ServerCompletionQueue* cq);

}  // namespace ferry::frontend::grpc
