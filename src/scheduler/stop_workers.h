#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace ferry::scheduler {

// The shutdown both schedulers share: sets `stopping` under `mu` (the flag their worker
// loops check), wakes every waiter on `cv`, and joins `workers`. A second call returns
// at once. Called by the scheduler's owner, never by one of the workers.
inline void StopWorkers(std::mutex& mu, std::condition_variable& cv, bool& stopping,
                        std::vector<std::thread>& workers) {
  {
    std::lock_guard lock(mu);
    if (stopping && workers.empty()) return;
    stopping = true;
  }
  cv.notify_all();
  for (auto& w : workers)
    if (w.joinable()) w.join();
  workers.clear();
}

}  // namespace ferry::scheduler
