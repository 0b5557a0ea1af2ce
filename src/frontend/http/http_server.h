#pragma once

#include <boost/beast/http.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry::frontend::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;

// Sends the response for one request. May be called from any thread, exactly once.
using Responder = std::function<void(Response)>;
// True once the client's connection has closed. Callable from any thread until the
// responder has been called.
using ClientGone = std::function<bool()>;
// Handles one request. Runs on an IO thread: must not block; hand slow work elsewhere
// and answer through the responder later.
using Handler = std::function<void(Request&&, Responder, ClientGone)>;

// Decodes %XX escapes in a path segment; false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out);

// A response with a JSON body; and one with {"error": message}.
Response JsonResponse(int status, std::string body);
Response JsonError(int status, std::string_view message);

struct HttpServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 8000;
  int threads = 0;                       // event loops; 0 = one per core
  uint64_t max_body_bytes = 64ull << 20;  // larger bodies get 413
  std::string name = "http";              // for logs
};

// `ferry serve`'s HTTP/1.1 server (REST and metrics): an Http1Server (http1_server.h:
// byte-level framing, keep-alive, pipelining, 100-continue, 400/413/431 for malformed or
// oversized requests) whose requests are handed to `handler` as Beast messages and whose
// answers are written as bytes. One event loop (io_context and thread) per `threads`,
// connections spread round-robin over them.
// Thread-safety: Start and Stop are called by one owner thread; handlers run on the
// loop threads.
class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Create(HttpServerOptions options, Handler handler);
  ~HttpServer();

  // Binds and starts the loops. Fails naming the address when the port is taken.
  Status Start();
  // The bound port (useful when options.port was 0).
  uint16_t port() const;
  // Stops accepting, closes idle connections, lets every connection finish the request
  // it is receiving or answering (up to `grace_ms`), then stops the loops and joins them.
  void Stop(int grace_ms = 5000);

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::frontend::http
