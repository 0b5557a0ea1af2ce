#pragma once

#include <google/protobuf/arena.h>

#include <functional>
#include <memory>

#include "frontend/grpc/unary_call.h"
#include "frontend/grpc_native/native_call.h"

namespace ferry::frontend::grpc_native {

// gRPC status codes the handlers use for malformed calls.
inline constexpr int kGrpcInternal = 13;
inline constexpr int kGrpcUnimplemented = 12;

// A unary method on the native transport: exactly one request message, then the
// method's handler (the same one grpc++'s transport runs) answers through the
// UnaryExchange interface, at once or later from any thread.
// Thread-safety: the CallHandler events on the loop; Finish from any thread, once.
template <typename Req, typename Resp>
class NativeUnary final : public CallHandler, public grpc::UnaryExchange<Req, Resp> {
 public:
  using Handler = std::function<void(grpc::UnaryExchange<Req, Resp>*)>;
  // `handler` outlives the call.
  explicit NativeUnary(const Handler* handler) : handler_(handler) {}

  void OnMessage(NativeCall* call, std::string_view bytes) override {
    if (++messages_ > 1) return call->Finish(kGrpcUnimplemented, "a unary method received a second request message");
    if (!request_.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      call->Finish(kGrpcInternal, "cannot parse the request message as " + request_.GetTypeName());
  }
  void OnHalfClose(NativeCall* call) override {
    if (messages_ == 0) return call->Finish(kGrpcUnimplemented, "a unary call ended without a request message");
    keep_ = call->shared_from_this();
    (*handler_)(this);
  }

  const Req& request() const override { return request_; }
  Resp* response() override { return &response_; }
  void Finish(const ::grpc::Status& status) override {
    NativeCall* call = keep_.get();
    call->Post([this, status] {
      if (status.ok()) keep_->SendProto(response_);
      keep_->Finish(static_cast<int>(status.error_code()), status.error_message());
      keep_.reset();  // may free this
    });
  }

 private:
  const Handler* handler_;
  Req request_;
  Resp response_;
  int messages_ = 0;
  // The call, from the handler's start to its Finish (a slow one may outlive the stream).
  std::shared_ptr<NativeCall> keep_;
};

}  // namespace ferry::frontend::grpc_native
