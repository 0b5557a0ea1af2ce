#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "frontend/grpc/call_count_sink.h"
#include "frontend/grpc/cq_tag.h"
#include "frontend/grpc/unary_call.h"
#include "protocol/grpc/health.grpc.pb.h"

namespace ferry::frontend::grpc {

// grpc.health.v1.Health with one status per service name: "" for the server, the
// inference service's full name, and one per model name (SERVING while the model has a
// ready version). Unknown names answer NOT_FOUND to Check, as the protocol says; Watch
// sends the current status (SERVICE_UNKNOWN for an unknown name), then every change.
// Served on the completion-queue API: register service() with the ServerBuilder, then
// Arm each of the server's queues once it is started. Another transport answers Check
// with Check() and serves Watch streams as Subscribers.
// Thread-safety: all methods are thread-safe.
class HealthService {
 public:
  using Status = ::grpc::health::v1::HealthCheckResponse::ServingStatus;

  // `check` and `watch` count the finished Check and Watch calls (null: not counted);
  // not owned, they must outlive the service.
  explicit HealthService(CallCountSink* check = nullptr, CallCountSink* watch = nullptr);
  ~HealthService();

  ::grpc::Service* service();
  // Arms `cq` to accept Check and Watch calls (each accepted call arms the next); the
  // calls count in `live`, which must outlive them.
  // REQUIRES: the server is started and `cq` is not shut down.
  void Arm(::grpc::ServerCompletionQueue* cq, LiveCalls* live);

  void Set(const std::string& service, bool serving);

  // Check's answer: the status of `service`, or nullopt for an unknown name (NOT_FOUND).
  std::optional<Status> Lookup(const std::string& service) const;
  // Answers one Check call (any transport): the status, or NOT_FOUND naming the service.
  void Check(UnaryExchange<::grpc::health::v1::HealthCheckRequest, ::grpc::health::v1::HealthCheckResponse>* call) const;

  // One Watch stream, whichever transport carries it. Push and End are called with the
  // service's lock held: they must only queue the write, never call back into the
  // service.
  class Subscriber {
   public:
    virtual const std::string& service() const = 0;
    virtual void PushLocked(Status s) = 0;  // the current status or a change
    virtual void EndLocked() = 0;           // shutdown: the stream ends (after NOT_SERVING)
   protected:
    ~Subscriber() = default;
  };
  // Starts sending to `s`: its current status at once (SERVICE_UNKNOWN for an unknown
  // name; NOT_SERVING and the end after Shutdown), then every change until Unsubscribe.
  void Subscribe(Subscriber* s);
  void Unsubscribe(Subscriber* s);
  // Every status becomes NOT_SERVING and stays so (shutdown); open watches end.
  void Shutdown();

  class Watcher;

 private:
  friend class Watcher;
  using CheckCall = UnaryCall<::grpc::health::v1::HealthCheckRequest, ::grpc::health::v1::HealthCheckResponse>;
  Status Get(const std::string& service) const;  // REQUIRES: mu_ held

  ::grpc::health::v1::Health::AsyncService async_;
  CheckCall::Method check_;
  CallCountSink* const watch_calls_;
  mutable std::mutex mu_;
  std::map<std::string, Status> statuses_;  // guarded by mu_
  std::set<Subscriber*> watchers_;          // guarded by mu_
  bool shut_down_ = false;                  // guarded by mu_
};

}  // namespace ferry::frontend::grpc
