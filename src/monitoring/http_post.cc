#include "monitoring/http_post.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace ferry::monitoring {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

Result<int> HttpPostJsonStatus(const std::string& url, const std::string& body, std::chrono::milliseconds timeout,
                               std::string_view content_type) {
  constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0)
    return InvalidArgument("URL '" + url + "' must start with http:// (TLS is not supported here)");
  const std::string rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  const std::string target = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string host = authority, port = "80";
  if (size_t colon = authority.rfind(':'); colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return InvalidArgument("URL '" + url + "' has no host");
  try {
    // Asynchronous operations on a private io_context: a tcp_stream's timeout applies only
    // to those, so one deadline bounds connect, send and receive together (a receiver that
    // accepts and never answers cannot hold the calling thread).
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) return Unavailable("POST " + url + ": cannot resolve '" + host + "': " + ec.message());
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, target, 11};
    req.set(bhttp::field::host, authority);
    req.set(bhttp::field::content_type, std::string(content_type));
    req.set(bhttp::field::user_agent, "ferry");
    req.body() = body;
    req.prepare_payload();
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    std::string failed;  // the stage that failed, with its error
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](beast::error_code e, const asio::ip::tcp::endpoint&) {
      if (e) return void(failed = e.message());
      bhttp::async_write(stream, req, [&](beast::error_code e2, size_t) {
        if (e2) return void(failed = "send: " + e2.message());
        bhttp::async_read(stream, buf, res, [&](beast::error_code e3, size_t) {
          if (e3) failed = "receive: " + e3.message();
        });
      });
    });
    io.run();
    if (!failed.empty()) return Unavailable("POST " + url + ": " + failed);
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    return static_cast<int>(res.result_int());
  } catch (const std::exception& e) {
    return Unavailable("POST " + url + ": " + e.what());
  }
}

Status HttpPostJson(const std::string& url, const std::string& body, std::chrono::milliseconds timeout) {
  FERRY_ASSIGN_OR_RETURN(int code, HttpPostJsonStatus(url, body, timeout));
  if (code / 100 != 2) return Unavailable("POST " + url + " answered " + std::to_string(code));
  return Status::Ok();
}

}  // namespace ferry::monitoring
