#include "frontend/grpc_native/native_listener.h"

#include <boost/asio/post.hpp>

#include <chrono>
#include <thread>
#include <vector>

namespace ferry::frontend::grpc_native {
namespace asio = boost::asio;

NativeListener::NativeListener(int threads, std::string name, const ConnectionOptions* options, MethodRouter* router)
    : options_(options), router_(router), loops_(std::make_unique<http::EventLoops>(threads, std::move(name))) {}

NativeListener::~NativeListener() { Shutdown(0); }

Status NativeListener::Start(const std::string& address, uint16_t port) {
  Status st = loops_->Start(address, port, [this](http::EventLoops::Socket socket, asio::io_context* loop) {
    auto c = std::make_shared<GrpcConnection>(std::move(socket), loop, options_, router_, &connections_);
    {
      std::lock_guard lock(live_mu_);
      live_.remove_if([](const std::weak_ptr<GrpcConnection>& w) { return w.expired(); });
      live_.push_back(c);
    }
    c->Start();
  });
  if (st.ok()) started_ = true;
  return st;
}

uint16_t NativeListener::port() const { return loops_->port(); }

void NativeListener::Each(void (GrpcConnection::*fn)()) {
  std::vector<std::shared_ptr<GrpcConnection>> open;
  {
    std::lock_guard lock(live_mu_);
    for (auto& w : live_)
      if (auto p = w.lock()) open.push_back(std::move(p));
  }
  for (auto& c : open) asio::post(*c->loop(), [c, fn] { ((*c).*fn)(); });
}

void NativeListener::Shutdown(int grace_ms, const std::function<void()>& before_stop) {
  if (!started_) return;
  started_ = false;
  loops_->StopAccepting();
  Each(&GrpcConnection::Shutdown);
  auto wait_until = [this](std::chrono::steady_clock::time_point deadline) {
    while (connections_.load() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms));
  Each(&GrpcConnection::Abort);
  wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
  if (before_stop) before_stop();
  loops_->StopLoops();
}

}  // namespace ferry::frontend::grpc_native
