#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "protocol/grpc/health.grpc.pb.h"

namespace ferry::frontend::grpc {

// grpc.health.v1.Health with one status per service name: "" for the server, the
// inference service's full name, and one per model name (SERVING while the model has a
// ready version). Unknown names answer NOT_FOUND to Check, as the protocol says.
// Thread-safety: all methods are thread-safe.
class HealthService final : public ::grpc::health::v1::Health::CallbackService {
 public:
  using Status = ::grpc::health::v1::HealthCheckResponse::ServingStatus;

  void Set(const std::string& service, bool serving);
  // Every status becomes NOT_SERVING and stays so (shutdown); open watches end.
  void Shutdown();

  ::grpc::ServerUnaryReactor* Check(::grpc::CallbackServerContext* ctx,
                                    const ::grpc::health::v1::HealthCheckRequest* req,
                                    ::grpc::health::v1::HealthCheckResponse* resp) override;
  ::grpc::ServerWriteReactor<::grpc::health::v1::HealthCheckResponse>* Watch(
      ::grpc::CallbackServerContext* ctx, const ::grpc::health::v1::HealthCheckRequest* req) override;

  class Watcher;

 private:
  friend class Watcher;
  Status Get(const std::string& service) const;  // REQUIRES: mu_ held

  mutable std::mutex mu_;
  std::map<std::string, Status> statuses_;  // guarded by mu_
  std::set<Watcher*> watchers_;             // guarded by mu_
  bool shut_down_ = false;                  // guarded by mu_
};

}  // namespace ferry::frontend::grpc
