#include "frontend/http/http_server.h"

#include <charconv>

#include "frontend/http/http1_server.h"
#include "protocol/v2_json.h"

namespace ferry::frontend::http {

namespace {

boost::beast::string_view BeastView(std::string_view v) { return {v.data(), v.size()}; }

// The handler's view of a request: a Beast message built from the connection's parse.
Request ToRequest(const Http1Connection& c) {
  const http1::Head& head = c.head();
  Request req;
  req.method_string(BeastView(head.method));
  req.target(BeastView(head.target));
  req.version(10 + head.minor_version);
  for (const http1::Field& f : head.fields) req.insert(BeastView(f.name), BeastView(f.value));
  req.body().assign(c.body().data(), c.body().size());
  return req;
}

}  // namespace

struct HttpServer::Impl {
  std::unique_ptr<Http1Server> server;
};

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
    if (ec != std::errc() || p != in.data() + i + 3) return false;
    out->push_back(static_cast<char>(v));
    i += 2;
  }
  return true;
}

Response JsonResponse(int status, std::string body) {
  Response r{static_cast<beast_http::status>(status), 11};
  r.set(beast_http::field::content_type, "application/json");
  r.body() = std::move(body);
  return r;
}

Response JsonError(int status, std::string_view message) { return JsonResponse(status, protocol::ErrorBody(message)); }

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(0); }

Result<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options, Handler handler) {
  Http1ServerOptions o;
  o.address = std::move(options.address);
  o.port = options.port;
  o.threads = options.threads;
  o.max_body_bytes = options.max_body_bytes;
  o.name = std::move(options.name);
  auto impl = std::make_unique<Impl>();
  FERRY_ASSIGN_OR_RETURN(impl->server,
                         Http1Server::Create(std::move(o), [handler = std::move(handler)](
                                                               std::shared_ptr<Http1Connection> c) {
                           handler(
                               ToRequest(*c), [c](Response r) { c->Reply(std::move(r)); },
                               [c] { return c->Gone(); });
                         }));
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

Status HttpServer::Start() { return impl_->server->Start(); }

uint16_t HttpServer::port() const { return impl_->server->port(); }

void HttpServer::Stop(int grace_ms) { impl_->server->Stop(grace_ms); }

}  // namespace ferry::frontend::http
