#include "frontend/grpc/method_counter.h"

namespace ferry::frontend::grpc {

const char* StatusCodeName(::grpc::StatusCode c) {
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

void MethodCounter::Count(::grpc::StatusCode code) {
  auto i = static_cast<size_t>(code);
  if (i >= kCodes) i = static_cast<size_t>(::grpc::StatusCode::UNKNOWN);
  prometheus::Counter* c = by_code_[i].load(std::memory_order_acquire);
  if (c == nullptr) {
    // Two threads may both look it up the first time; the family returns the same
    // counter for the same labels, so either store is right.
    c = &metrics_->GrpcCalls(method_, StatusCodeName(static_cast<::grpc::StatusCode>(i)));
    by_code_[i].store(c, std::memory_order_release);
  }
  c->Increment();
}

}  // namespace ferry::frontend::grpc
