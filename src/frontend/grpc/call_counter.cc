#include "frontend/grpc/call_counter.h"

#include <string>

namespace ferry::frontend::grpc {
namespace {

const char* CodeName(::grpc::StatusCode c) {
  switch (c) {
    case ::grpc::StatusCode::OK: return "OK";
    case ::grpc::StatusCode::CANCELLED: return "CANCELLED";
    case ::grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case ::grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case ::grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case ::grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case ::grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case ::grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case ::grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case ::grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case ::grpc::StatusCode::ABORTED: return "ABORTED";
    case ::grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case ::grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case ::grpc::StatusCode::INTERNAL: return "INTERNAL";
    case ::grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case ::grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case ::grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

class CallCounter : public ::grpc::experimental::Interceptor {
 public:
  CallCounter(std::string method, monitoring::Metrics* metrics) : method_(std::move(method)), metrics_(metrics) {}

  void Intercept(::grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(::grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS))
      metrics_->GrpcCall(method_, CodeName(methods->GetSendStatus().error_code()));
    methods->Proceed();
  }

 private:
  const std::string method_;
  monitoring::Metrics* metrics_;
};

}  // namespace

::grpc::experimental::Interceptor* CallCounterFactory::CreateServerInterceptor(
    ::grpc::experimental::ServerRpcInfo* info) {
  return new CallCounter(info->method(), metrics_);
}

}  // namespace ferry::frontend::grpc
