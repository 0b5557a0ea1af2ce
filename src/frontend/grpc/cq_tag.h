#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <thread>

// The pieces every call served on gRPC's completion-queue API shares: the tag format
// ferry's polling threads dispatch, the polling loop, and the count of live calls that
// tells an owner when its queues may be shut down.
namespace ferry::frontend::grpc {

// One call (or other object) with operations in flight on a completion queue.
class CqHandler {
 public:
  virtual ~CqHandler() = default;
  // Operation `op` (the handler's own numbering) completed; `ok` as gRPC reports it.
  virtual void OnEvent(int op, bool ok) = 0;
};

// The tag handed to gRPC for one operation: which handler, which operation.
struct CqTag {
  CqHandler* handler;
  int op;
};

// Runs the events of `cq` until it is shut down and drained; every tag on it must be a
// CqTag. One thread per queue.
inline void PollQueue(::grpc::CompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    auto* t = static_cast<CqTag*>(tag);
    t->handler->OnEvent(t->op, ok);
  }
}

// Counts the calls alive (armed or accepted, not yet freed) on a set of queues. gRPC
// forbids starting an operation on a queue after its Shutdown, so an owner shuts its
// queues down only once this count is zero: after grpc::Server::Shutdown every armed
// request fails and every call is cancelled, so each call frees itself while the
// queues are still polled. Thread-safety: thread-safe.
class LiveCalls {
 public:
  void Add() { n_.fetch_add(1, std::memory_order_relaxed); }
  void Remove() { n_.fetch_sub(1, std::memory_order_acq_rel); }
  int count() const { return n_.load(std::memory_order_acquire); }
  // REQUIRES: the server is shut down (no new calls) and the queues are polled.
  void WaitForNone() const {
    while (count() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

 private:
  std::atomic<int> n_{0};
};

}  // namespace ferry::frontend::grpc
