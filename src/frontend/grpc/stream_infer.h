#pragma once

#include <grpcpp/grpcpp.h>

#include "frontend/grpc/model_infer_call.h"

namespace ferry::frontend::grpc {

// Arms `cq` to accept one ModelStreamInfer stream; each accepted stream arms the next.
// A stream reads requests while earlier ones run, answers each with a
// ModelStreamInferResponse (the response, or error_message with the request id) in
// request order, and bounds the requests in flight per stream so a fast sender cannot
// grow memory without limit. Frees itself when the stream has ended and its last
// request has come back.
// REQUIRES: the server is started and `cq` is not shut down.
void ArmModelStreamInfer(const InferenceCallEnv* env, ::grpc::ServerCompletionQueue* cq);

}  // namespace ferry::frontend::grpc
