#include "frontend/grpc/call_pollers.h"

#include <algorithm>

namespace ferry::frontend::grpc {

CallPollers::CallPollers(::grpc::ServerBuilder* builder, int threads) {
  for (int i = 0; i < std::max(1, threads); ++i) queues_.push_back(builder->AddCompletionQueue());
}

CallPollers::~CallPollers() { Drain(); }

void CallPollers::Start(const std::function<void(::grpc::ServerCompletionQueue*)>& arm) {
  for (auto& q : queues_) {
    arm(q.get());
    threads_.emplace_back([cq = q.get()] { PollQueue(cq); });
  }
}

void CallPollers::Drain() {
  if (drained_) return;
  drained_ = true;
  if (!threads_.empty()) live_.WaitForNone();
  for (auto& q : queues_) q->Shutdown();
  if (threads_.empty()) {  // never started: drain here, gRPC requires empty queues
    for (auto& q : queues_) PollQueue(q.get());
  }
  for (auto& t : threads_) t.join();
}

}  // namespace ferry::frontend::grpc
