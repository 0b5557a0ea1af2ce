#include "frontend/http/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <charconv>
#include <cerrno>
#include <chrono>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "frontend/http/event_loops.h"
#include "frontend/http/response_head.h"
#include "protocol/v2_json.h"

namespace ferry::frontend::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  std::unique_ptr<EventLoops> loops;
  std::atomic<int> sessions{0};

  class Session;
  std::mutex sessions_mu;
  std::list<std::weak_ptr<Session>> live;  // guarded by sessions_mu

  void Accepted(tcp::socket socket);
};

class HttpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl* server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {
    ++server_->sessions;
    // Room for a typical request in one recv: a small buffer makes Beast read the
    // header and the body in separate system calls.
    buffer_.reserve(16 * 1024);
  }
  ~Session() { --server_->sessions; }

  void Start() { asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); }); }

  // Called on the session's loop during shutdown.
  void Close() {
    closing_ = true;
    // A request whose bytes have started to arrive is in flight: let it finish.
    bool mid_request = parser_ && (parser_->got_some() || buffer_.size() > 0);
    if (!busy_ && !mid_request) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_.socket().close(ec);
    }
  }
  asio::any_io_executor executor() { return stream_.get_executor(); }

 private:
  void Read() {
    if (closing_) return Close();
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(64 * 1024);
    beast_http::async_read(stream_, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == beast_http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof || ec == asio::error::bad_descriptor) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    if (ec) {
      // Malformed or oversized HTTP: answer once, then close the connection (the rest
      // of the stream cannot be trusted to be framed).
      int status = ec == beast_http::error::body_limit ? 413 : 400;
      std::string msg = status == 413 ? "request body exceeds the limit of " +
                                            std::to_string(server_->options.max_body_bytes) + " bytes"
                                      : "malformed HTTP request: " + ec.message();
      Response r{static_cast<beast_http::status>(status), 11};
      r.set(beast_http::field::content_type, "application/json");
      r.body() = protocol::ErrorBody(msg);
      keep_alive_ = false;
      busy_ = true;
      return Write(std::move(r));
    }
    busy_ = true;
    Request req = parser_->release();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == beast_http::verb::head;
    auto self = shared_from_this();
    // While the request is handled no read is pending on the socket, so a peek (from
    // any thread) tells whether the client has closed its side.
    ClientGone gone = [fd = stream_.socket().native_handle()] { return PeerClosed(fd); };
    server_->handler(
        std::move(req),
        [self](Response r) {
          asio::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable { self->Write(std::move(r)); });
        },
        std::move(gone));
  }

  // Writes `r` with one gather write of the head and the body, straight to the socket:
  // Beast's serializer and its stream's write machinery cost about 11k instructions a
  // response, several times the formatting of the head (response_head.h).
  void Write(Response r) {
    const bool keep = keep_alive_ && !closing_;
    out_body_ = std::move(r.body());
    const int minor = version_ == 10 ? 0 : 1;
    out_head_.clear();
    const auto reason = r.reason();
    AppendStatusLine(&out_head_, minor, r.result_int(), std::string_view(reason.data(), reason.size()));
    AppendFields(r, &out_head_);
    AppendFraming(&out_head_, r.result_int(), out_body_.size(), minor, keep);
    // A HEAD answer has the headers of the GET answer, Content-Length included, and no
    // body (RFC 9110 9.3.2); a body would be read as the start of the next response.
    if (head_) out_body_.clear();
    head_ = false;
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(out_head_), asio::buffer(out_body_)};
    asio::async_write(stream_.socket(), buffers, [self = shared_from_this(), keep](beast::error_code ec, size_t) {
      self->busy_ = false;
      // Keep the buffers' capacity for the next answer, but not a large body's.
      if (self->out_body_.capacity() > kKeptBodyBytes) std::string().swap(self->out_body_);
      if (ec || !keep) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        self->stream_.socket().close(ignored);
        return;
      }
      self->Read();
    });
  }

  static constexpr size_t kKeptBodyBytes = 64 * 1024;

  Impl* server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  bool busy_ = false;     // a request is being handled or its response written
  bool closing_ = false;  // shutting down: close after the current response
  bool keep_alive_ = true;
  bool head_ = false;  // the request being answered is a HEAD
  unsigned version_ = 11;
  std::string out_head_, out_body_;  // the answer being written
};

void HttpServer::Impl::Accepted(tcp::socket socket) {
  auto s = std::make_shared<Session>(this, std::move(socket));
  {
    std::lock_guard lock(sessions_mu);
    live.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
    live.push_back(s);
  }
  s->Start();
}

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
  auto impl = std::make_unique<Impl>();
  impl->loops = std::make_unique<EventLoops>(options.threads, options.name);
  impl->options = std::move(options);
  impl->handler = std::move(handler);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

Status HttpServer::Start() {
  Impl& s = *impl_;
  return s.loops->Start(s.options.address, s.options.port,
                        [&s](EventLoops::Socket socket, asio::io_context*) { s.Accepted(tcp::socket(std::move(socket))); });
}

uint16_t HttpServer::port() const { return impl_->loops->port(); }

asio::io_context* HttpServer::CurrentLoop() { return EventLoops::CurrentLoop(); }

void HttpServer::StopAccepting() { impl_->loops->StopAccepting(); }

void HttpServer::Stop(int grace_ms) {
  Impl& s = *impl_;
  StopAccepting();
  std::vector<std::shared_ptr<Impl::Session>> sessions;
  {
    std::lock_guard lock(s.sessions_mu);
    for (auto& w : s.live)
      if (auto p = w.lock()) sessions.push_back(std::move(p));
    s.live.clear();
  }
  for (auto& sess : sessions) asio::post(sess->executor(), [sess] { sess->Close(); });
  sessions.clear();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (s.sessions.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s.loops->StopLoops();
}

}  // namespace ferry::frontend::http
