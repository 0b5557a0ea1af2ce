#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include "frontend/grpc/call_count_sink.h"
#include "frontend/grpc/cq_tag.h"

namespace ferry::frontend::grpc {

// Answers every call of a method no registered service has (a client built against
// another API version, grpc.reflection.v1 where ferry serves v1alpha, a typo) with
// UNIMPLEMENTED, as gRPC itself would, and counts it in `calls` under one name for all
// such methods: the method is the client's choice, so it is not a label value.
// Served on the completion-queue API: register service() with the ServerBuilder
// (RegisterAsyncGenericService), then Arm each queue once the server is started.
// Thread-safety: Arm may be called from any thread; the rest is internal.
class UnknownMethods {
 public:
  explicit UnknownMethods(CallCountSink* calls) : calls_(calls) {}  // not owned; may be null

  ::grpc::AsyncGenericService* service() { return &async_; }
  // Arms `cq` to accept one such call (each accepted call arms the next); the call
  // counts in `live`, which must outlive it.
  // REQUIRES: the server is started and `cq` is not shut down.
  void Arm(::grpc::ServerCompletionQueue* cq, LiveCalls* live);

 private:
  class Call;
  ::grpc::AsyncGenericService async_;
  CallCountSink* const calls_;
};

}  // namespace ferry::frontend::grpc
