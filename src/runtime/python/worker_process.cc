#include "runtime/python/worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/log.h"
#include "runtime/python/worker_messages.h"

namespace ferry::runtime::python {

namespace {

constexpr int kChildSocketFd = 3;
constexpr int kChildShmFd = 4;

std::string Errno(const std::string& what, int err) { return what + ": " + std::strerror(err); }

// Logs each line the worker prints until it (and every process holding the pipe) exits.
void ForwardOutput(int fd, std::string model, pid_t pid) {
  std::string pending;
  char buf[4096];
  auto flush_line = [&](std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    FERRY_LOG(kInfo, "python worker", ("model", model)("pid", pid)("line", line));
  };
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = pending.find('\n', start)) != std::string::npos) {
      flush_line(std::string_view(pending).substr(start, nl - start));
      start = nl + 1;
    }
    pending.erase(0, start);
    if (pending.size() > 64 * 1024) {  // a very long line without newline: log it in pieces
      flush_line(pending);
      pending.clear();
    }
  }
  if (!pending.empty()) flush_line(pending);
  close(fd);
}

struct FileActions {
  posix_spawn_file_actions_t a;
  FileActions() { posix_spawn_file_actions_init(&a); }
  ~FileActions() { posix_spawn_file_actions_destroy(&a); }
};
struct SpawnAttr {
  posix_spawnattr_t a;
  SpawnAttr() { posix_spawnattr_init(&a); }
  ~SpawnAttr() { posix_spawnattr_destroy(&a); }
};

}  // namespace

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = strsignal(sig);
    return "was killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "");
  }
  return "ended (wait status " + std::to_string(status) + ")";
}

Result<std::unique_ptr<WorkerProcess>> WorkerProcess::Spawn(const WorkerSpawn& spawn) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return Internal(Errno("socketpair", errno));
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    int err = errno;
    close(sv[0]);
    close(sv[1]);
    return Internal(Errno("pipe", err));
  }
  // The child's dup2()s run in order, so a source numbered 0..4 could be overwritten
  // before it is copied (a small process has such low fds): copy every source above
  // that range first.
  int shm = fcntl(spawn.shm_fd, F_DUPFD_CLOEXEC, 10);
  int child_sock = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
  int child_out = fcntl(out[1], F_DUPFD_CLOEXEC, 10);
  close(sv[1]);
  close(out[1]);
  auto close_child_ends = [&] {
    for (int fd : {shm, child_sock, child_out})
      if (fd >= 0) close(fd);
  };
  if (shm < 0 || child_sock < 0 || child_out < 0) {
    int err = errno;
    close_child_ends();
    close(sv[0]);
    close(out[0]);
    return Internal(Errno("duplicating descriptors for the worker", err));
  }
  FileActions fa;
  posix_spawn_file_actions_addopen(&fa.a, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa.a, child_out, 1);
  posix_spawn_file_actions_adddup2(&fa.a, child_out, 2);
  posix_spawn_file_actions_adddup2(&fa.a, child_sock, kChildSocketFd);
  posix_spawn_file_actions_adddup2(&fa.a, shm, kChildShmFd);
  // Anything else the server has open (listening sockets, model files) stays out,
  // even descriptors some library opened without CLOEXEC.
  posix_spawn_file_actions_addclosefrom_np(&fa.a, kChildShmFd + 1);

  SpawnAttr attr;
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGCHLD}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr.a, &none);  // the server blocks SIGTERM/SIGINT in every thread
  posix_spawnattr_setsigdefault(&attr.a, &defaults);
  posix_spawnattr_setpgroup(&attr.a, 0);
  posix_spawnattr_setflags(&attr.a, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> argv, envp;
  argv.push_back(const_cast<char*>(spawn.executable.c_str()));
  for (const auto& a : spawn.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spawn.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawnp(&pid, spawn.executable.c_str(), &fa.a, &attr.a, argv.data(), envp.data());
  close_child_ends();
  if (rc != 0) {
    close(sv[0]);
    close(out[0]);
    return Unavailable(Errno("cannot start Python interpreter '" + spawn.executable + "'", rc));
  }
  return std::unique_ptr<WorkerProcess>(new WorkerProcess(pid, sv[0], out[0], spawn.log_name));
}

WorkerProcess::WorkerProcess(pid_t pid, int sock, int log_fd, std::string log_name)
    : pid_(pid), sock_(sock), log_thread_(ForwardOutput, log_fd, std::move(log_name), pid) {}

WorkerProcess::~WorkerProcess() {
  if (!reaped_) {
    // Closing the socket asks the worker to leave; a short grace lets it flush output.
    shutdown(sock_, SHUT_RDWR);
    Reap(200);
  }
  close(sock_);
  if (log_thread_.joinable()) log_thread_.join();
}

Status WorkerProcess::Send(std::string_view message) {
  while (true) {
    ssize_t n = send(sock_, message.data(), message.size(), MSG_NOSIGNAL);
    if (n >= 0) return Status::Ok();
    if (errno == EINTR) continue;
    return Unavailable(Errno("sending to the Python worker (pid " + std::to_string(pid_) + ")", errno));
  }
}

WorkerProcess::Wait WorkerProcess::Receive(int timeout_ms, int interrupt_fd, std::string* message) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    pollfd fds[2] = {{sock_, POLLIN, 0}, {interrupt_fd, POLLIN, 0}};
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Wait::kTimeout;
      wait_ms = static_cast<int>(std::min<int64_t>(left, INT32_MAX));
    }
    int n = poll(fds, interrupt_fd >= 0 ? 2 : 1, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Wait::kClosed;
    if (n == 0) continue;  // the deadline check above decides
    if (interrupt_fd >= 0 && (fds[1].revents & POLLIN)) return Wait::kInterrupted;
    if (fds[0].revents & POLLIN) {
      // Into a buffer kept across calls: a fresh 1 MiB string per call cost a zero-fill
      // (and an mmap/munmap pair) on every request.
      if (receive_buffer_.empty()) receive_buffer_.resize(kMaxMessageBytes);
      ssize_t got = recv(sock_, receive_buffer_.data(), receive_buffer_.size(), MSG_TRUNC);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return Wait::kClosed;
      if (static_cast<size_t>(got) > kMaxMessageBytes) {
        message->assign("{\"ok\":false,\"error\":\"the worker sent a message over 1 MiB\"}");
        return Wait::kMessage;
      }
      message->assign(receive_buffer_.data(), static_cast<size_t>(got));
      return Wait::kMessage;
    }
    if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) return Wait::kClosed;
  }
}

std::string WorkerProcess::KillAndReap() {
  if (reaped_) return how_ended_;
  kill(-pid_, SIGKILL);  // the group: processes the model started die with it
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  how_ended_ = DescribeExit(status);
  return how_ended_;
}

std::string WorkerProcess::Reap(int grace_ms) {
  if (reaped_) return how_ended_;
  for (int waited = 0; waited <= grace_ms; waited += 10) {
    if (Exited()) return how_ended_;
    usleep(10 * 1000);
  }
  return KillAndReap();
}

bool WorkerProcess::Exited() {
  if (reaped_) return true;
  siginfo_t info{};
  // WNOWAIT: while the exited worker stays a zombie its pid (and so its process-group
  // id) cannot be reused, so killing what it left in its group is safe.
  if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != pid_)
    return false;
  kill(-pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  how_ended_ = DescribeExit(status);
  return true;
}

}  // namespace ferry::runtime::python
