#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "engine/grpc_upstream.h"

namespace ferry::engine {

// The gRPC gateway's upstream connections: one GrpcUpstreamSession per (event loop,
// replica port), made on first use and replaced once unusable (closed, GOAWAY). HTTP/2
// multiplexes, so a replica gets one connection per gateway loop, and a call never
// leaves its loop. A session leaves the map when it closes (its replica died or went
// away, or the connection failed), so a dead replica's session is not kept until its
// port is reused.
// Ownership: the map shares its sessions with the calls using them; a session's close
// hook holds the map only weakly, so either may outlive the other.
// Thread-safety: thread-safe; a session is used, and closes, only on its loop.
class UpstreamSessions {
 public:
  UpstreamSessions() : map_(std::make_shared<Map>()) {}

  std::shared_ptr<GrpcUpstreamSession> For(boost::asio::io_context* loop, uint16_t port);
  // Closes every session, each on its loop, waiting for it (the gateway stopping; the
  // loops must still run).
  void Clear();
  // How many sessions the map holds.
  size_t size() const;

 private:
  using Key = std::pair<boost::asio::io_context*, uint16_t>;
  struct Map {
    std::mutex mu;
    std::map<Key, std::shared_ptr<GrpcUpstreamSession>> sessions;  // guarded by mu
  };
  std::shared_ptr<Map> map_;
};

}  // namespace ferry::engine
