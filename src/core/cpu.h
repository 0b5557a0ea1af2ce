#pragma once

#include <sched.h>

#include <thread>

namespace ferry {

// Cores this process may run on: its CPU affinity (taskset, cgroup cpusets), not the
// machine's total, so a pinned server sizes its thread pools to what it really has.
inline int AvailableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

}  // namespace ferry
