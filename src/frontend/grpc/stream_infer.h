#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <optional>

#include "protocol/grpc/grpc_service.pb.h"
#include "server/server.h"

namespace ferry::frontend::grpc {

// ferry status -> gRPC status through protocol/error_map.h.
::grpc::Status ToGrpc(const Status& s);

// The W3C trace context of a call's `traceparent` metadata, if it carries a valid one.
std::optional<TraceContext> TraceParent(const std::multimap<::grpc::string_ref, ::grpc::string_ref>& metadata);

// A reactor for one ModelStreamInfer stream: reads requests while earlier ones run,
// answers each with a ModelStreamInferResponse (the response, or error_message with
// the request id) in request order, and bounds the requests in flight per stream so a
// fast sender cannot grow memory without limit. Deletes itself when the stream ends.
::grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>* NewStreamInferReactor(
    server::Server* server, ::grpc::CallbackServerContext* context);

}  // namespace ferry::frontend::grpc
