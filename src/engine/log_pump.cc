#include "engine/log_pump.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace ferry::engine {

LogPump::LogPump() : wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), thread_([this] { Run(); }) {}

LogPump::~LogPump() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  thread_.join();
  for (auto& s : added_) ::close(s.fd);
  ::close(wake_fd_);
}

void LogPump::Add(int fd, std::shared_ptr<RotatingLog> log, std::shared_ptr<std::atomic<bool>> eof) {
  {
    std::lock_guard lock(mu_);
    added_.push_back({fd, std::move(log), std::move(eof)});
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void LogPump::Run() {
  std::vector<Source> sources;
  std::vector<pollfd> fds;
  char buf[16 * 1024];
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
      for (auto& s : added_) sources.push_back(std::move(s));
      added_.clear();
    }
    fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
    for (const auto& s : sources) fds.push_back(pollfd{s.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
    if (fds[0].revents) {
      uint64_t v;
      (void)!::read(wake_fd_, &v, sizeof v);
    }
    for (size_t i = fds.size() - 1; i >= 1; --i) {
      if (!fds[i].revents) continue;
      Source& s = sources[i - 1];
      ssize_t n = ::read(s.fd, buf, sizeof buf);
      if (n > 0) {
        s.log->Append(std::string_view(buf, static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(s.fd);
        if (s.eof) s.eof->store(true);
        sources.erase(sources.begin() + static_cast<long>(i - 1));
      }
    }
  }
  for (auto& s : sources) ::close(s.fd);
}

}  // namespace ferry::engine
