#pragma once

#include <string>
#include <vector>

#include "frontend/grpc/call_count_sink.h"
#include "frontend/grpc/cq_tag.h"
#include "protocol/grpc/reflection.grpc.pb.h"

namespace ferry::frontend::grpc {

// grpc.reflection.v1alpha.ServerReflection (what grpcurl and grpcio-reflection ask) on
// the completion-queue API. It answers from the compiled-in descriptor pool: the
// services named at construction for list_services; files by name, by symbol or by
// extension, each with the files it imports that the same request has not sent yet;
// and extension numbers. Anything unknown gets an in-band error_response (NOT_FOUND),
// as the protocol asks, and the stream stays open.
// Usage: register service() with the ServerBuilder, Arm each queue once it is started.
// Thread-safety: Arm may be called from any thread; the rest is internal.
class ReflectionService {
 public:
  // `calls` counts the finished streams (null: not counted); not owned, it must outlive
  // the service.
  explicit ReflectionService(std::vector<std::string> services, CallCountSink* calls = nullptr);

  ::grpc::Service* service() { return &async_; }
  // Arms `cq` to accept one reflection stream (each accepted stream arms the next); the
  // stream counts in `live`, which must outlive it.
  // REQUIRES: the server is started and `cq` is not shut down.
  void Arm(::grpc::ServerCompletionQueue* cq, LiveCalls* live);

  // The answer to one request (exposed for unit tests).
  ::grpc::reflection::v1alpha::ServerReflectionResponse Answer(
      const ::grpc::reflection::v1alpha::ServerReflectionRequest& request) const;

 private:
  class Stream;
  ::grpc::reflection::v1alpha::ServerReflection::AsyncService async_;
  const std::vector<std::string> services_;
  CallCountSink* const calls_;
};

}  // namespace ferry::frontend::grpc
