#include "engine/concurrency_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ferry::engine {
namespace {

struct Recorder : ConcurrencyLimiter::Waiter {
  Recorder(std::vector<int>* order, int id) : order(order), id(id) {}
  void Grant() override { order->push_back(id); }
  std::vector<int>* order;
  int id;
};

using Outcome = ConcurrencyLimiter::Outcome;

// The owners of queued waiters keep them alive (the limiter holds them weakly).
struct Waiters {
  std::vector<int> order;
  std::vector<std::shared_ptr<Recorder>> held;
  std::shared_ptr<Recorder> operator()(int id) { return held.emplace_back(std::make_shared<Recorder>(&order, id)); }
};

TEST(ConcurrencyLimiterTest, QueuesBeyondTheCapacityAndRefusesBeyondTheQueue) {
  ConcurrencyLimiter l(1, 2);
  Waiters w;
  std::vector<int>& order = w.order;
  EXPECT_EQ(l.Acquire(w(0)), Outcome::kAcquired);
  EXPECT_EQ(l.Acquire(w(1)), Outcome::kQueued);
  EXPECT_EQ(l.Acquire(w(2)), Outcome::kQueued);
  EXPECT_EQ(l.Acquire(w(3)), Outcome::kQueueFull);
  EXPECT_EQ(l.active(), 1);
  EXPECT_EQ(l.queued(), 2);
  EXPECT_TRUE(order.empty());
  l.Release();  // the slot goes to the oldest waiter, in FIFO order
  EXPECT_EQ(order, std::vector<int>({1}));
  EXPECT_EQ(l.active(), 1);
  l.Release();
  EXPECT_EQ(order, std::vector<int>({1, 2}));
  l.Release();
  EXPECT_EQ(l.active(), 0);
  EXPECT_EQ(l.queued(), 0);
}

TEST(ConcurrencyLimiterTest, ANewRequestDoesNotOvertakeTheQueue) {
  ConcurrencyLimiter l(1, 5);
  Waiters w;
  std::vector<int>& order = w.order;
  ASSERT_EQ(l.Acquire(w(0)), Outcome::kAcquired);
  ASSERT_EQ(l.Acquire(w(1)), Outcome::kQueued);
  l.Configure(0, 5);  // its replica left: no slot at all
  l.Release();
  EXPECT_TRUE(order.empty()) << "no capacity, no grant";
  EXPECT_EQ(l.Acquire(w(2)), Outcome::kQueued);
  l.Configure(2, 5);  // two replicas ready: both waiters get a slot, oldest first
  EXPECT_EQ(order, std::vector<int>({1, 2}));
  EXPECT_EQ(l.active(), 2);
}

TEST(ConcurrencyLimiterTest, ACancelledWaiterLeavesTheQueueAndGetsNoSlot) {
  ConcurrencyLimiter l(1, 2);
  Waiters w;
  std::vector<int>& order = w.order;
  auto a = w(1);
  auto b = w(2);
  ASSERT_EQ(l.Acquire(w(0)), Outcome::kAcquired);
  ASSERT_EQ(l.Acquire(a), Outcome::kQueued);
  ASSERT_EQ(l.Acquire(b), Outcome::kQueued);
  EXPECT_TRUE(l.Cancel(a.get())) << "still queued: the client left, or its time ran out";
  EXPECT_FALSE(l.Cancel(a.get())) << "not queued any more";
  EXPECT_EQ(l.queued(), 1);
  // Its place is free for a newcomer.
  EXPECT_EQ(l.Acquire(w(3)), Outcome::kQueued);
  l.Release();
  EXPECT_EQ(order, std::vector<int>({2}));
  EXPECT_FALSE(l.Cancel(b.get())) << "granted: it holds a slot and must release it";
}

TEST(ConcurrencyLimiterTest, WithoutAQueueTheLimitRefusesAtOnce) {
  ConcurrencyLimiter l(2, 0);
  Waiters w;
  EXPECT_EQ(l.Acquire(w(0)), Outcome::kAcquired);
  EXPECT_EQ(l.Acquire(w(1)), Outcome::kAcquired);
  EXPECT_EQ(l.Acquire(w(2)), Outcome::kQueueFull);
}

TEST(ConcurrencyLimiterTest, AWaiterWhoseOwnerIsGoneIsSkipped) {
  ConcurrencyLimiter l(1, 3);
  Waiters w;
  ASSERT_EQ(l.Acquire(w(0)), Outcome::kAcquired);
  {
    auto gone = std::make_shared<Recorder>(&w.order, 1);
    ASSERT_EQ(l.Acquire(gone), Outcome::kQueued);
  }  // its event loop stopped: nothing keeps it
  ASSERT_EQ(l.Acquire(w(2)), Outcome::kQueued);
  l.Release();
  EXPECT_EQ(w.order, std::vector<int>({2})) << "the slot went past the vanished waiter";
  EXPECT_EQ(l.active(), 1);
  EXPECT_EQ(l.queued(), 0);
}

// Many threads acquiring and releasing: never more slots held than the capacity, every
// queued waiter granted exactly once, nothing left behind.
TEST(ConcurrencyLimiterTest, NeverExceedsTheCapacityUnderContention) {
  constexpr int kCapacity = 3, kThreads = 8, kRounds = 2000;
  ConcurrencyLimiter l(kCapacity, kThreads);
  std::atomic<int> holding{0}, peak{0}, grants{0};
  struct Flag : ConcurrencyLimiter::Waiter {
    std::atomic<bool> granted{false};
    std::atomic<int>* grants;
    explicit Flag(std::atomic<int>* g) : grants(g) {}
    void Grant() override {
      grants->fetch_add(1);
      granted.store(true, std::memory_order_release);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        auto w = std::make_shared<Flag>(&grants);
        const auto outcome = l.Acquire(w);
        ASSERT_NE(outcome, Outcome::kQueueFull) << "the queue holds every thread";
        if (outcome == Outcome::kQueued)
          while (!w->granted.load(std::memory_order_acquire)) std::this_thread::yield();
        const int now = holding.fetch_add(1) + 1;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {}
        holding.fetch_sub(1);
        l.Release();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_LE(peak.load(), kCapacity);
  EXPECT_EQ(l.active(), 0);
  EXPECT_EQ(l.queued(), 0);
}

}  // namespace
}  // namespace ferry::engine
