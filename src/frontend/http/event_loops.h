#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"

namespace ferry::frontend::http {

// What the HTTP servers share (ferry serve's HttpServer, the engine's gateway): N event
// loops, an io_context and a thread each, and a listening socket whose connections are
// handed to the loops round-robin.
// Thread-safety: Start, StopAccepting and StopLoops are called by one owner thread;
// on_accept runs on the loop the connection was given to.
// True when the peer of connected socket `fd` has closed its side (or the connection
// failed). Peeks without consuming, so it is meaningful only while no read is pending on
// the socket (a request being handled). Callable from any thread.
bool PeerClosed(int fd);

class EventLoops {
 public:
  using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;
  // A new connection (TCP_NODELAY set) and its loop, on that loop.
  using OnAccept = std::function<void(Socket, boost::asio::io_context*)>;

  // threads <= 0: one per core. `name`: the server's, for logs and errors.
  EventLoops(int threads, std::string name);
  ~EventLoops();

  // Binds address:port, starts accepting and runs the loops. Fails naming the address
  // when it is invalid or the port is taken.
  Status Start(const std::string& address, uint16_t port, OnAccept on_accept);
  uint16_t port() const;
  size_t size() const;
  // The loop running the calling thread when it is one of an EventLoops, else null.
  static boost::asio::io_context* CurrentLoop();
  // Closes the listening socket (idempotent; waits until it is closed).
  void StopAccepting();
  // Stops the loops and joins their threads; what is pending on them is dropped.
  void StopLoops();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::frontend::http
