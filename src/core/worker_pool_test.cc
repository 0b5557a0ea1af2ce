#include "core/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>
#include <vector>

namespace ferry {
namespace {

using namespace std::chrono_literals;

// Waits (up to 10 s) for `pred`; the pool's threads exit asynchronously.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 1000 && !pred(); ++i) std::this_thread::sleep_for(10ms);
  return pred();
}

TEST(WorkerPool, StartsNoThreadUntilWorkArrivesAndNeverRunsOnTheCaller) {
  WorkerPool pool;
  EXPECT_EQ(pool.threads(), 0u);
  std::promise<std::thread::id> ran;
  pool.Run([&ran] { ran.set_value(std::this_thread::get_id()); });
  EXPECT_NE(ran.get_future().get(), std::this_thread::get_id());
  EXPECT_EQ(pool.threads(), 1u);
}

TEST(WorkerPool, GivesEveryConcurrentTaskAThreadOfItsOwn) {
  // Eight tasks that each wait for all eight to have started: they only finish if none
  // queued behind another.
  WorkerPool pool;
  constexpr int kTasks = 8;
  std::atomic<int> started{0};
  std::promise<void> all;
  auto all_started = all.get_future().share();
  std::vector<std::promise<void>> done(kTasks);
  for (int i = 0; i < kTasks; ++i) {
    pool.Run([&, i] {
      if (++started == kTasks) all.set_value();
      all_started.wait();
      done[i].set_value();
    });
  }
  for (auto& d : done) ASSERT_EQ(d.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(pool.threads(), static_cast<size_t>(kTasks));
}

TEST(WorkerPool, IdleThreadsExitAfterTheTimeoutAndNewWorkStartsOneAgain) {
  WorkerPool pool(WorkerPoolOptions{0, 50ms});
  std::promise<void> a, b;
  pool.Run([&a] { a.set_value(); });
  pool.Run([&b] { b.set_value(); });
  a.get_future().wait();
  b.get_future().wait();
  EXPECT_TRUE(Eventually([&] { return pool.threads() == 0; })) << pool.threads() << " threads left";
  std::promise<void> c;
  pool.Run([&c] { c.set_value(); });
  EXPECT_EQ(c.get_future().wait_for(10s), std::future_status::ready);
}

TEST(WorkerPool, AOneThreadPoolRunsEveryTaskOnTheSameThreadInOrder) {
  WorkerPool pool(WorkerPoolOptions{1, 0ms});
  std::vector<int> order;
  std::set<std::thread::id> ids;
  std::mutex mu;
  std::vector<std::promise<void>> done(20);
  for (int i = 0; i < 20; ++i) {
    pool.Run([&, i] {
      std::lock_guard lock(mu);
      order.push_back(i);
      ids.insert(std::this_thread::get_id());
      done[i].set_value();
    });
  }
  for (auto& d : done) d.get_future().wait();
  EXPECT_EQ(ids.size(), 1u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[i], i);
}

}  // namespace
}  // namespace ferry
