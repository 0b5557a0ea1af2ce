#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "frontend/grpc/cq_tag.h"

namespace ferry::frontend::grpc {

// The completion queues of a gRPC server and ferry's threads that poll them, one thread
// per queue. Every service of `ferry serve` runs on the completion-queue API, so these
// are the only threads that read the network or run handlers: gRPC starts no callback
// or sync executor threads of its own (with any callback or sync method registered,
// gRPC 1.51 runs extra threads that poll the same sockets and hand events over).
//
// Lifecycle: construct with the ServerBuilder before BuildAndStart (it adds the queues),
// Start(arm) after, then Drain() after grpc::Server::Shutdown has returned and before the
// services are destroyed.
// Thread-safety: Start and Drain are called by the owner thread; live() is thread-safe.
class CallPollers {
 public:
  CallPollers(::grpc::ServerBuilder* builder, int threads);
  ~CallPollers();

  // Calls `arm` once per queue (to arm its first calls), then starts the threads.
  void Start(const std::function<void(::grpc::ServerCompletionQueue*)>& arm);
  // Waits until every call counted in live() is freed, then shuts the queues down and
  // joins the threads. REQUIRES: grpc::Server::Shutdown has returned (or the server
  // never started).
  void Drain();

  LiveCalls* live() { return &live_; }

 private:
  std::vector<std::unique_ptr<::grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
  LiveCalls live_;
  bool drained_ = false;
};

}  // namespace ferry::frontend::grpc
