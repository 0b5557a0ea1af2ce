#pragma once

#include <boost/beast/core/tcp_stream.hpp>

#include <memory>
#include <mutex>
#include <vector>

namespace ferry::engine {

// Idle keep-alive connections to one replica, reused newest first (the likeliest to be
// still open). A connection taken is owned by one exchange until it is put back.
// Thread-safety: thread-safe.
class UpstreamPool {
 public:
  using Connection = boost::beast::tcp_stream;
  static constexpr size_t kMaxIdle = 256;

  std::unique_ptr<Connection> Take() {
    std::lock_guard lock(mu_);
    if (idle_.empty()) return nullptr;
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  void Put(std::unique_ptr<Connection> c) {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdle) idle_.push_back(std::move(c));
  }
  // Closes every idle connection (a replica going away; the gateway stopping).
  void Clear() {
    std::vector<std::unique_ptr<Connection>> drop;
    std::lock_guard lock(mu_);
    drop.swap(idle_);
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
};

}  // namespace ferry::engine
