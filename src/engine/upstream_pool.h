#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace ferry::engine {

// Idle keep-alive connections to one replica, reused newest first (the likeliest to be
// still open), kept per event loop: a connection's completions run on the loop it was
// made on, so an exchange takes one of its own loop and never hops threads.
// A connection taken is owned by one exchange until it is put back.
// Thread-safety: thread-safe.
class UpstreamPool {
 public:
  // A socket bound to its loop's own executor type: a type-erased executor is copied and
  // destroyed on every operation (5% of the gateway's CPU). No per-operation timeouts:
  // the gateway's exchange watches its deadline with one timer of its own.
  using Connection = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;
  static constexpr size_t kMaxIdle = 256;

  using Loop = boost::asio::io_context;

  std::unique_ptr<Connection> Take(Loop* loop) {
    std::lock_guard lock(mu_);
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it)
      if (it->first == loop) {
        auto c = std::move(it->second);
        idle_.erase(std::next(it).base());
        return c;
      }
    return nullptr;
  }
  void Put(Loop* loop, std::unique_ptr<Connection> c) {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdle) idle_.emplace_back(loop, std::move(c));
  }
  // Closes every idle connection (a replica going away; the gateway stopping).
  void Clear() {
    std::vector<std::pair<Loop*, std::unique_ptr<Connection>>> drop;
    std::lock_guard lock(mu_);
    drop.swap(idle_);
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<Loop*, std::unique_ptr<Connection>>> idle_;  // guarded by mu_
};

}  // namespace ferry::engine
