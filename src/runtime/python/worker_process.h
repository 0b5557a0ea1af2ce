#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace ferry::runtime::python {

struct WorkerSpawn {
  std::string executable;         // looked up on PATH when it has no '/'
  std::vector<std::string> args;  // argv[1..]
  std::vector<std::string> env;   // the whole environment, "KEY=value"
  int shm_fd = -1;                // becomes the child's fd 4
  std::string log_name;           // the model name its output lines are logged under
};

// One worker process: spawned with posix_spawn (no fork of the multithreaded server),
// in its own process group (a terminal's Ctrl-C reaches the server only, which then
// stops its workers), with a SOCK_SEQPACKET socket as fd 3, the shared memory as fd 4,
// no other inherited descriptors, and stdout/stderr on a pipe that a thread reads and
// logs line by line with the model name and pid.
// The destructor kills the whole process group (SIGKILL), reaps it and joins the
// log thread: no worker outlives its owner.
// Thread-safety: one thread uses it at a time (the owning model instance's).
class WorkerProcess {
 public:
  static Result<std::unique_ptr<WorkerProcess>> Spawn(const WorkerSpawn& spawn);
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Sends one message. Fails (naming the errno) when the worker is gone.
  Status Send(std::string_view message);

  enum class Wait { kMessage, kTimeout, kInterrupted, kClosed };
  // Waits up to `timeout_ms` (< 0: forever) for one message into `*message`. Returns
  // kInterrupted when `interrupt_fd` (an eventfd; -1: none) becomes readable first,
  // kClosed when the worker closed its end (it exited or crashed).
  Wait Receive(int timeout_ms, int interrupt_fd, std::string* message);

  // SIGKILLs the process group, reaps the worker and returns how it ended ("exited
  // with status 3", "was killed by signal 11 (Segmentation fault)"). Idempotent.
  std::string KillAndReap();
  // Reaps a worker that has exited or is about to (after kClosed), waiting up to
  // `grace_ms` before killing it; returns how it ended.
  std::string Reap(int grace_ms);
  // Whether the process has already ended (reaps it if so).
  bool Exited();

 private:
  WorkerProcess(pid_t pid, int sock, int log_fd, std::string log_name);

  pid_t pid_;
  int sock_;
  bool reaped_ = false;
  std::string how_ended_;
  std::vector<char> receive_buffer_;  // kMaxMessageBytes once the first message arrives
  std::thread log_thread_;
};

// How a wait status reads in an error message.
std::string DescribeExit(int wait_status);

}  // namespace ferry::runtime::python
