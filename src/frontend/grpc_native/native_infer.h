#pragma once

#include <memory>

#include "frontend/grpc_native/native_call.h"
#include "server/server.h"

namespace ferry::frontend::grpc_native {

// ModelInfer on the native transport: the request is parsed into an arena that lives
// in the call (tensors borrow the parsed bytes), handed to the Server facade with
// may_run_inline, and answered on the connection's loop: at once when the model ran
// inline, else through NativeCall::Post from the instance thread.
std::unique_ptr<CallHandler> NewModelInfer(server::Server* server);

// ModelStreamInfer: every request message is decoded and run as it arrives; answers go
// out in request order, errors in band (error_message), and the stream ends OK once the
// client half-closed and every answer is written.
std::unique_ptr<CallHandler> NewModelStreamInfer(server::Server* server);

}  // namespace ferry::frontend::grpc_native
