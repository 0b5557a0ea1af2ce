#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "core/result.h"
#include "frontend/grpc_native/grpc_connection.h"
#include "frontend/http/event_loops.h"

namespace ferry::frontend::grpc_native {

// A listening socket of the native gRPC transport: event loops (one per core, or
// `threads`), each accepted connection a GrpcConnection whose calls `router` routes.
// What `ferry serve --grpc-transport native` and the engine's native gRPC gateway share.
// Thread-safety: Start and Shutdown are called by one owner thread; `options` and
// `router` outlive the listener.
class NativeListener {
 public:
  NativeListener(int threads, std::string name, const ConnectionOptions* options, MethodRouter* router);
  ~NativeListener();

  // Binds and starts serving; fails naming the address when the port is taken.
  Status Start(const std::string& address, uint16_t port);
  uint16_t port() const;
  // Stops accepting, sends GOAWAY on every connection, waits up to `grace_ms` for their
  // calls, then closes what is left, runs `before_stop` (when set; the loops still run)
  // and stops the loops. Idempotent.
  void Shutdown(int grace_ms, const std::function<void()>& before_stop = {});

 private:
  void Each(void (GrpcConnection::*fn)());

  const ConnectionOptions* options_;
  MethodRouter* router_;
  std::atomic<int> connections_{0};
  std::mutex live_mu_;
  std::list<std::weak_ptr<GrpcConnection>> live_;  // guarded by live_mu_
  bool started_ = false;
  // Last: destroyed first, with the connections its loops still hold.
  std::unique_ptr<http::EventLoops> loops_;
};

}  // namespace ferry::frontend::grpc_native
