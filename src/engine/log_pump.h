#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/rotating_log.h"

namespace ferry::engine {

// Copies the output pipes of replica processes into their RotatingLogs, on one thread
// that polls every pipe. A pipe is dropped at end of file (its process, and whatever it
// spawned, has exited).
// Thread-safety: Add may be called from any thread.
class LogPump {
 public:
  LogPump();
  ~LogPump();  // stops the thread; pipes still open are closed
  LogPump(const LogPump&) = delete;
  LogPump& operator=(const LogPump&) = delete;

  // Takes ownership of `fd` (the read end of a pipe). `eof` (may be null) is set once the
  // pipe reached end of file and everything before it is in the log.
  void Add(int fd, std::shared_ptr<RotatingLog> log, std::shared_ptr<std::atomic<bool>> eof = nullptr);

 private:
  struct Source {
    int fd;
    std::shared_ptr<RotatingLog> log;
    std::shared_ptr<std::atomic<bool>> eof;
  };
  void Run();

  int wake_fd_;  // eventfd: a new pipe or stop
  std::mutex mu_;
  std::vector<Source> added_;  // handed to the thread; guarded by mu_
  bool stop_ = false;          // guarded by mu_
  std::thread thread_;
};

}  // namespace ferry::engine
