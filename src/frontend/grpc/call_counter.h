#pragma once

#include <grpcpp/support/server_interceptor.h>

#include "monitoring/metrics.h"

namespace ferry::frontend::grpc {

// Counts every finished gRPC call by method and status code
// (ferry_grpc_requests_total), whatever the service: inference, health, reflection.
// Thread-safety: one interceptor per call, as gRPC creates them.
class CallCounterFactory : public ::grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallCounterFactory(monitoring::Metrics* metrics) : metrics_(metrics) {}  // not owned
  ::grpc::experimental::Interceptor* CreateServerInterceptor(::grpc::experimental::ServerRpcInfo* info) override;

 private:
  monitoring::Metrics* metrics_;
};

}  // namespace ferry::frontend::grpc
