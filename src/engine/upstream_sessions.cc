#include "engine/upstream_sessions.h"

#include <boost/asio/post.hpp>

#include <future>

namespace ferry::engine {
namespace asio = boost::asio;

std::shared_ptr<GrpcUpstreamSession> UpstreamSessions::For(asio::io_context* loop, uint16_t port) {
  std::lock_guard lock(map_->mu);
  auto& s = map_->sessions[{loop, port}];
  if (s && s->usable()) return s;
  s = GrpcUpstreamSession::Connect(loop, port);
  // Runs on the session's loop, never under `mu` (a close is a socket event or an
  // explicit Close, neither from inside For): erases the entry unless a newer session
  // has taken it.
  s->OnClosed([weak = std::weak_ptr<Map>(map_), key = Key{loop, port}, self = s.get()] {
    std::shared_ptr<Map> map = weak.lock();
    if (!map) return;
    std::lock_guard lock(map->mu);
    auto it = map->sessions.find(key);
    if (it != map->sessions.end() && it->second.get() == self) map->sessions.erase(it);
  });
  return s;
}

void UpstreamSessions::Clear() {
  std::map<Key, std::shared_ptr<GrpcUpstreamSession>> drop;
  {
    std::lock_guard lock(map_->mu);
    drop.swap(map_->sessions);
  }
  // Closed on their loops (a socket is its loop's), waiting for each.
  for (auto& [key, s] : drop) {
    std::promise<void> closed;
    asio::post(*key.first, [s = std::move(s), &closed]() mutable {
      s->Close("the gateway is stopping");
      s.reset();
      closed.set_value();
    });
    closed.get_future().wait();
  }
}

size_t UpstreamSessions::size() const {
  std::lock_guard lock(map_->mu);
  return map_->sessions.size();
}

}  // namespace ferry::engine
