#include "cli/admin_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace ferry::cli {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

Result<AdminClient> AdminClient::FromUrl(const std::string& url) {
  AdminClient c;
  c.url_ = url;
  std::string rest = url;
  const std::string scheme = "http://";
  if (rest.rfind(scheme, 0) == 0) {
    rest = rest.substr(scheme.size());
  } else if (rest.find("://") != std::string::npos) {
    return InvalidArgument("--admin must be an http:// URL, got '" + url + "'");
  }
  const size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  c.prefix_ = slash == std::string::npos ? "" : rest.substr(slash);
  while (!c.prefix_.empty() && c.prefix_.back() == '/') c.prefix_.pop_back();
  if (hostport.empty()) return InvalidArgument("--admin '" + url + "' names no host");
  if (hostport.front() == '[') {  // [::1]:8090
    const size_t close = hostport.find(']');
    if (close == std::string::npos) return InvalidArgument("--admin '" + url + "': unclosed '['");
    c.host_ = hostport.substr(1, close - 1);
    c.port_ = close + 1 < hostport.size() && hostport[close + 1] == ':' ? hostport.substr(close + 2) : "80";
  } else {
    const size_t colon = hostport.rfind(':');
    c.host_ = hostport.substr(0, colon);
    c.port_ = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  }
  if (c.port_.empty() || c.port_.find_first_not_of("0123456789") != std::string::npos || c.port_.size() > 5)
    return InvalidArgument("--admin '" + url + "': '" + c.port_ + "' is not a port");
  return c;
}

Result<AdminAnswer> AdminClient::Call(bhttp::verb method, const std::string& target, const std::string& body,
                                      const std::string& content_type, std::chrono::milliseconds timeout) const {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(host_, port_, ec);
  if (ec) return Unavailable("cannot reach the admin API at " + url_ + ": " + ec.message());
  stream.expires_after(timeout);
  stream.connect(endpoints, ec);
  if (ec) return Unavailable("cannot reach the admin API at " + url_ + ": " + ec.message());
  bhttp::request<bhttp::string_body> req{method, prefix_ + target, 11};
  req.set(bhttp::field::host, host_ + ":" + port_);
  req.set(bhttp::field::user_agent, "ferry-cli");
  req.set(bhttp::field::connection, "close");
  if (!body.empty() || method == bhttp::verb::post || method == bhttp::verb::put) {
    req.set(bhttp::field::content_type, content_type);
    req.body() = body;
  }
  req.prepare_payload();
  bhttp::write(stream, req, ec);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64u << 20);
  if (!ec) bhttp::read(stream, buffer, parser, ec);
  if (ec == beast::error::timeout)
    return DeadlineExceeded("the admin API at " + url_ + " did not answer within " +
                            std::to_string(timeout.count() / 1000) + " s");
  if (ec) return Unavailable("the admin API at " + url_ + " failed: " + ec.message());
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  auto& res = parser.get();
  return AdminAnswer{static_cast<int>(res.result_int()), std::move(res.body())};
}

std::string UrlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace ferry::cli
