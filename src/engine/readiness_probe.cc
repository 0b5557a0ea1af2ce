#include "engine/readiness_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rapidjson/document.h>

#include <cerrno>
#include <cstring>
#include <map>

namespace ferry::engine {
namespace {

using SteadyClock = std::chrono::steady_clock;

int MillisLeft(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Waits for `events` on fd; false on timeout.
bool WaitFor(int fd, short events, SteadyClock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    int n = ::poll(&p, 1, MillisLeft(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Connects fd (non-blocking) to 127.0.0.1:port by the deadline.
Status ConnectLoopback(int fd, uint16_t port, SteadyClock::time_point deadline, const std::string& where) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return Unavailable(where + ": " + std::strerror(errno));
    if (!WaitFor(fd, POLLOUT, deadline)) return DeadlineExceeded(where + ": connect timed out");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) return Unavailable(where + ": " + std::strerror(err));
  }
  return Status::Ok();
}

}  // namespace

Result<HttpReply> LoopbackHttp(uint16_t port, const std::string& method, const std::string& path,
                               const std::string& body, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  const std::string where = "127.0.0.1:" + std::to_string(port) + path;
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Internal("socket: " + std::string(std::strerror(errno)));
  FERRY_RETURN_IF_ERROR(ConnectLoopback(fd.get(), port, deadline, where));
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!body.empty() || method == "POST")
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(fd.get(), POLLOUT, deadline)) return DeadlineExceeded(where + ": send timed out");
      continue;
    }
    return Unavailable(where + ": send: " + std::strerror(errno));
  }
  std::string resp;
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      resp.append(buf, static_cast<size_t>(n));
      if (resp.size() > (16u << 20)) return Internal(where + ": reply too large");
      continue;
    }
    if (n == 0) break;
    if (errno == EAGAIN || errno == EINTR) {
      if (!WaitFor(fd.get(), POLLIN, deadline)) return DeadlineExceeded(where + ": no reply in time");
      continue;
    }
    return Unavailable(where + ": recv: " + std::strerror(errno));
  }
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody": the server frames by Content-Length and closes.
  if (resp.compare(0, 5, "HTTP/") != 0 || resp.size() < 12) return Unavailable(where + ": not an HTTP reply");
  HttpReply reply;
  reply.status = std::atoi(resp.c_str() + 9);
  size_t head_end = resp.find("\r\n\r\n");
  reply.head = resp.substr(0, head_end);
  if (head_end != std::string::npos) reply.body = resp.substr(head_end + 4);
  return reply;
}

Status LoopbackAccepts(uint16_t port, std::chrono::milliseconds timeout) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Internal("socket: " + std::string(std::strerror(errno)));
  return ConnectLoopback(fd.get(), port, SteadyClock::now() + timeout, "127.0.0.1:" + std::to_string(port));
}

Readiness ProbeReplica(uint16_t port, uint16_t grpc_port, const std::vector<std::string>& models,
                       std::chrono::milliseconds timeout) {
  Readiness r;
  auto health = LoopbackHttp(port, "GET", "/v2/health/ready", "", timeout);
  if (!health.ok()) {
    r.detail = health.status().message();
    return r;
  }
  if (health->status != 200) {
    r.detail = "/v2/health/ready answered " + std::to_string(health->status);
    return r;
  }
  auto index = LoopbackHttp(port, "POST", "/v2/repository/index", "{}", timeout);
  if (!index.ok()) {
    r.detail = index.status().message();
    return r;
  }
  rapidjson::Document d;
  d.Parse(index->body.data(), index->body.size());
  if (index->status != 200 || d.HasParseError() || !d.IsArray()) {
    r.detail = "/v2/repository/index answered " + std::to_string(index->status);
    return r;
  }
  std::map<std::string, std::pair<std::string, std::string>> state;  // model -> (state, reason)
  for (const auto& e : d.GetArray()) {
    if (!e.IsObject() || !e.HasMember("name") || !e["name"].IsString()) continue;
    auto& slot = state[e["name"].GetString()];
    std::string s = e.HasMember("state") && e["state"].IsString() ? e["state"].GetString() : "";
    // A model with several versions is ready when one is; keep READY once seen.
    if (slot.first == "READY") continue;
    slot.first = s;
    slot.second = e.HasMember("reason") && e["reason"].IsString() ? e["reason"].GetString() : "";
  }
  for (const auto& m : models) {
    auto it = state.find(m);
    if (it == state.end()) {
      r.detail = "model '" + m + "' is not in the repository index";
      return r;
    }
    if (it->second.first != "READY") {
      r.detail = "model '" + m + "' is " + it->second.first;
      if (it->second.first == "UNAVAILABLE" && !it->second.second.empty())
        r.failure = "model '" + m + "' failed to load: " + it->second.second;
      return r;
    }
  }
  // `ferry serve` opens its gRPC port just after its REST port: a replica is not ready
  // for the gRPC gateway until that one accepts too.
  if (grpc_port != 0) {
    if (Status s = LoopbackAccepts(grpc_port, timeout); !s.ok()) {
      r.detail = "gRPC port: " + s.message();
      return r;
    }
  }
  r.ready = true;
  return r;
}

}  // namespace ferry::engine
