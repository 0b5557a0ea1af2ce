#include "frontend/http/event_loops.h"

#include <boost/asio.hpp>

#include <sys/socket.h>

#include <cerrno>

#include <atomic>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "core/cpu.h"
#include "core/log.h"

namespace ferry::frontend::http {

bool PeerClosed(int fd) {
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

thread_local asio::io_context* current_loop = nullptr;

struct Loop {
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
};

}  // namespace

struct EventLoops::Impl {
  std::string name;
  std::vector<std::unique_ptr<Loop>> loops;
  std::optional<asio::basic_socket_acceptor<tcp, asio::io_context::executor_type>> acceptor;
  OnAccept on_accept;
  size_t next_loop = 0;
  uint16_t bound_port = 0;
  std::atomic<bool> stopping{false};

  void Accept() {
    asio::io_context* loop = &loops[next_loop++ % loops.size()]->ioc;
    acceptor->async_accept(*loop, [this, loop](boost::system::error_code ec, Socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping) return;
        FERRY_LOG(kWarning, "accept failed", ("server", name)("error", ec.message()));
      } else {
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        // The accept completes on the acceptor's loop; the connection lives on its own.
        asio::dispatch(*loop, [this, loop, s = std::move(socket)]() mutable { on_accept(std::move(s), loop); });
      }
      if (!stopping) Accept();
    });
  }
};

EventLoops::EventLoops(int threads, std::string name) : impl_(std::make_unique<Impl>()) {
  if (threads <= 0) threads = AvailableCores();
  impl_->name = std::move(name);
  for (int i = 0; i < threads; ++i) impl_->loops.push_back(std::make_unique<Loop>());
}

EventLoops::~EventLoops() {
  StopAccepting();
  StopLoops();
}

Status EventLoops::Start(const std::string& address, uint16_t port, OnAccept on_accept) {
  Impl& s = *impl_;
  s.on_accept = std::move(on_accept);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) return InvalidArgument("invalid listen address '" + address + "'");
  tcp::endpoint ep(addr, port);
  s.acceptor.emplace(s.loops[0]->ioc);
  s.acceptor->open(ep.protocol(), ec);
  if (!ec) s.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(ep, ec);
  if (!ec) s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable(s.name + ": cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message());
  s.bound_port = s.acceptor->local_endpoint().port();
  s.Accept();
  for (auto& loop : s.loops) {
    loop->guard.emplace(loop->ioc.get_executor());
    loop->thread = std::thread([l = loop.get()] {
      current_loop = &l->ioc;
      l->ioc.run();
    });
  }
  FERRY_LOG(kInfo, "listening", ("server", s.name)("address", address)("port", s.bound_port)("threads", s.loops.size()));
  return Status::Ok();
}

uint16_t EventLoops::port() const { return impl_->bound_port; }

size_t EventLoops::size() const { return impl_->loops.size(); }

asio::io_context* EventLoops::CurrentLoop() { return current_loop; }

void EventLoops::StopAccepting() {
  Impl& s = *impl_;
  if (s.stopping.exchange(true) || !s.acceptor) return;
  std::promise<void> done;
  asio::post(s.acceptor->get_executor(), [&] {
    boost::system::error_code ec;
    s.acceptor->close(ec);
    done.set_value();
  });
  if (s.loops[0]->thread.joinable()) done.get_future().wait();
}

void EventLoops::StopLoops() {
  for (auto& loop : impl_->loops) {
    loop->guard.reset();
    loop->ioc.stop();
  }
  for (auto& loop : impl_->loops)
    if (loop->thread.joinable()) loop->thread.join();
}

}  // namespace ferry::frontend::http
