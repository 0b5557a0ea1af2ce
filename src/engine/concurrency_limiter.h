#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace ferry::engine {

// A deployment's limit on requests forwarded to its replicas at once
// (gateway.max_concurrency per ready replica), and the bounded FIFO of requests waiting
// for one of those slots (gateway.max_queue). Shared by both gateways, so REST and gRPC
// requests queue in one order.
//
// A request takes a slot with Acquire; if none is free it joins the queue (or is refused
// when the queue is full) and is handed a slot later, in arrival order, by Grant() on
// whatever thread freed it (a Release, or a larger capacity). The waiter's Grant() must
// only pass the news to the request's own thread (post to its event loop, wake its
// completion queue): it runs on another request's thread, outside the limiter's lock.
// The queue has no clock: the time a request may wait (gateway.queue_timeout, its
// deadline) and a client that leaves are the waiter's to notice; it then calls Cancel.
// Thread-safety: all methods are thread-safe.
class ConcurrencyLimiter {
 public:
  class Waiter {
   public:
    virtual ~Waiter() = default;
    // The waiter now holds a slot (it must Release it). Called once, from any thread.
    virtual void Grant() = 0;
  };

  enum class Outcome {
    kAcquired,   // a slot is held now; the waiter was not kept
    kQueued,     // in the queue: Grant() comes later, unless Cancel takes it out first
    kQueueFull,  // no slot and no room in the queue: refuse the request
  };

  // capacity: slots (max_concurrency x ready replicas); max_queue: waiting room.
  ConcurrencyLimiter(int capacity = 0, int max_queue = 0);

  // The queue keeps the waiter weakly: its owner keeps it alive while it waits (a REST
  // request through its timer, a gRPC call through its ticket), so a request whose owner
  // is gone (its event loop stopped) is skipped, and the queue never keeps it alive.
  Outcome Acquire(const std::shared_ptr<Waiter>& waiter);
  // Takes a queued waiter out: true if it was still queued (no Grant() will come);
  // false if it was never queued or has been granted a slot (its Grant() has run or is
  // running: it holds a slot and must Release it).
  bool Cancel(const Waiter* waiter);
  // Gives a slot back; the oldest waiter gets it if the capacity allows.
  void Release();
  // New bounds (the route table changed: replicas became ready or left, or the spec
  // changed in place). A larger capacity grants waiters at once; a smaller one lets the
  // requests holding slots finish. A shorter queue keeps who is in it.
  void Configure(int capacity, int max_queue);

  int active() const;  // slots held
  int queued() const;  // waiters in the queue

 private:
  struct Entry {
    const Waiter* id;
    std::weak_ptr<Waiter> waiter;
  };
  // Pops the waiters that the free slots go to (skipping those gone), holding mu_.
  std::deque<std::shared_ptr<Waiter>> TakeGrantable();
  static void GrantAll(std::deque<std::shared_ptr<Waiter>> granted);

  mutable std::mutex mu_;
  int capacity_;   // guarded by mu_
  int max_queue_;  // guarded by mu_
  int active_ = 0;  // guarded by mu_
  std::deque<Entry> queue_;  // guarded by mu_; oldest first
};

}  // namespace ferry::engine
