#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "frontend/http/http1_framing.h"
#include "frontend/http/event_loops.h"
#include "frontend/http/http_server.h"

namespace ferry::frontend::http {

class Http1Server;

// One client connection of an Http1Server, on one event loop: reads a request (head and
// body, Content-Length or chunked), hands it to the server's handler, writes the answer,
// then reads the next (keep-alive; pipelined requests wait their turn). The request's
// head and body are views into the connection's buffer, valid until the answer is sent;
// no read is pending meanwhile.
// Thread-safety: everything runs on the connection's loop, except Reply and Gone, which
// any thread may call.
class Http1Connection : public std::enable_shared_from_this<Http1Connection> {
 public:
  using Socket = EventLoops::Socket;
  Http1Connection(Http1Server* server, boost::asio::io_context* loop, Socket socket);
  ~Http1Connection();

  // The request being handled.
  const http1::Head& head() const { return head_; }
  std::string_view body() const { return body_; }
  bool is_head() const { return is_head_; }
  boost::asio::io_context* loop() const { return loop_; }
  // True once the client has closed its connection (a peek at the socket).
  bool Gone() const;

  // Answers the request with a response made here (the gateway's own endpoints, errors).
  // Once per request, from any thread.
  void Reply(Response r);
  // Answers with a forwarded response: `fields` are whole field lines ("Name: value\r\n",
  // no framing or connection fields), `body` must stay valid until the write ends (in
  // forward_buffer() or decoded_body()). `head_length`: the Content-Length to announce
  // for a HEAD request (nullopt: the body's size). Once per request, on the loop.
  void SendForwarded(int status, std::string_view reason, std::string_view fields, std::string_view body,
                     std::optional<uint64_t> head_length = std::nullopt);

  // Buffers kept across requests for the forwarder (fewer allocations): the bytes of
  // the replica's answer, and its body when it came chunked; the request head it sends.
  std::string& forward_buffer() { return forward_; }
  std::string& decoded_body() { return decoded_; }
  std::string& upstream_head() { return upstream_head_; }

  // Starts reading; on the loop.
  void Start();
  // Shutting down: closes the connection now when idle, else after the current answer.
  // On the loop.
  void Close();

 private:
  void Read();
  void Parse();
  void Fail(int status, std::string message);
  void Dispatch();
  void Write();
  void Finished();
  bool Idle() const { return !busy_ && end_ == start_; }

  Http1Server* server_;
  boost::asio::io_context* loop_;
  Socket socket_;
  std::string in_;  // bytes from the client; [start_, end_) not consumed yet
  size_t start_ = 0, end_ = 0;
  http1::Head head_;
  bool head_parsed_ = false;  // head_ holds the current request's head, views into in_
  std::optional<http1::ChunkedDecoder> chunked_;
  size_t decoded_to_ = 0;  // the chunked body's bytes fed so far end here, in in_
  size_t request_end_ = 0;
  std::string chunked_body_;
  std::string_view body_;
  bool continue_sent_ = false;
  bool busy_ = false;  // a request is being handled or answered
  bool closing_ = false;
  bool keep_alive_ = true;
  bool is_head_ = false;
  int minor_version_ = 1;
  std::string out_head_, local_body_, forward_, decoded_, upstream_head_;
  std::string_view out_body_;
};

struct Http1ServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 0;
  int threads = 0;                        // event loops; 0 = one per core
  uint64_t max_body_bytes = 64ull << 20;  // larger request bodies get 413
  size_t max_head_bytes = 64 * 1024;      // longer request heads get 431
  std::string name = "gateway";           // for logs
};

// The REST gateway's HTTP/1.1 server: parses only what forwarding needs (http1_framing:
// request line, fields, framing) instead of building a message object per request, and
// lets the handler answer with bytes. Keep-alive; one event loop (io_context and thread)
// per `threads`, connections spread round-robin over them; malformed requests get 400
// and the connection closes, too large ones 413 / 431; "Expect: 100-continue" gets its
// 100 before the body is read.
// Thread-safety: Start and Stop are called by one owner thread; the handler runs on the
// loop threads, each request on its connection's loop.
class Http1Server {
 public:
  using Handler = std::function<void(std::shared_ptr<Http1Connection>)>;
  static Result<std::unique_ptr<Http1Server>> Create(Http1ServerOptions options, Handler handler);
  ~Http1Server();

  Status Start();
  uint16_t port() const;
  // Stops accepting, closes idle connections, lets every connection finish the request
  // it is receiving or answering (up to `grace_ms`), then stops the loops and joins them.
  void Stop(int grace_ms);

 private:
  friend class Http1Connection;
  struct Impl;
  explicit Http1Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::frontend::http
