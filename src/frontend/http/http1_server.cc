#include "frontend/http/http1_server.h"

#include <boost/asio.hpp>
#include <boost/beast/http/status.hpp>

#include <sys/socket.h>

#include <array>
#include <cstring>
#include <cerrno>
#include <chrono>
#include <future>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include "frontend/http/event_loops.h"
#include "frontend/http/response_head.h"
#include "protocol/v2_json.h"

namespace ferry::frontend::http {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kInitialBuffer = 16 * 1024;  // a typical request in one recv
constexpr size_t kKeptBuffer = 1 << 20;       // a bigger buffer goes after its request

}  // namespace

struct Http1Server::Impl {
  Http1Server* owner = nullptr;  // the server that owns this
  Http1ServerOptions options;
  Handler handler;
  std::atomic<int> connections{0};
  std::mutex live_mu;
  std::list<std::weak_ptr<Http1Connection>> live;  // guarded by live_mu
  // Last: destroyed first, with the connections its loops still hold.
  std::unique_ptr<EventLoops> loops;
};

Http1Connection::Http1Connection(Http1Server* server, asio::io_context* loop, Socket socket)
    : server_(server), loop_(loop), socket_(std::move(socket)) {
  ++server_->impl_->connections;
  in_.resize(kInitialBuffer);
}

Http1Connection::~Http1Connection() { --server_->impl_->connections; }

void Http1Connection::Start() { Read(); }

bool Http1Connection::Gone() const {
  // While a request is handled no read is pending on the socket, so a peek tells
  // whether the client has closed its side.
  return PeerClosed(const_cast<Socket&>(socket_).native_handle());
}

void Http1Connection::Close() {
  closing_ = true;
  if (!Idle()) return;  // a request whose bytes have started to arrive finishes first
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

void Http1Connection::Read() {
  if (closing_ && Idle()) return Close();
  if (in_.size() - end_ < 4096) in_.resize(std::max(in_.size() * 2, end_ + kInitialBuffer));
  // The views of a parsed head point into in_, which may just have moved.
  head_parsed_ = false;
  socket_.async_read_some(asio::buffer(in_.data() + end_, in_.size() - end_),
                          [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                            if (ec) {
                              // The client went (or the gateway is stopping): nothing to answer.
                              boost::system::error_code ignored;
                              self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
                              self->socket_.close(ignored);
                              return;
                            }
                            self->end_ += n;
                            self->Parse();
                          });
}

void Http1Connection::Parse() {
  const Http1ServerOptions& o = server_->impl_->options;
  std::string_view pending(in_.data() + start_, end_ - start_);
  if (!head_parsed_) {
    http1::ParseResult r = http1::ParseRequestHead(pending, o.max_head_bytes, &head_);
    if (r.state == http1::State::kIncomplete) return Read();
    if (r.state == http1::State::kError)
      return Fail(r.too_large ? 431 : 400, r.too_large ? r.error : "malformed HTTP request: " + r.error);
    head_parsed_ = true;
    if (!chunked_ && request_end_ == 0) {  // the first parse of this request
      if (head_.chunked) {
        chunked_.emplace(o.max_body_bytes);
        chunked_body_.clear();
        decoded_to_ = start_ + head_.size;
      } else if (head_.content_length > o.max_body_bytes) {
        return Fail(413, "request body exceeds the limit of " + std::to_string(o.max_body_bytes) + " bytes");
      } else {
        request_end_ = start_ + head_.size + head_.content_length;
      }
    }
  }
  if (chunked_) {
    auto step = chunked_->Feed(std::string_view(in_.data() + decoded_to_, end_ - decoded_to_), &chunked_body_);
    decoded_to_ += step.consumed;
    if (step.result.state == http1::State::kError)
      return Fail(step.result.too_large ? 413 : 400,
                  step.result.too_large ? step.result.error : "malformed HTTP request: " + step.result.error);
    if (step.result.state == http1::State::kIncomplete) {
      // Decoded bytes need no keeping: the buffer restarts after the head.
      const size_t keep = end_ - decoded_to_;
      const size_t body_start = start_ + head_.size;
      std::memmove(in_.data() + body_start, in_.data() + decoded_to_, keep);
      decoded_to_ = body_start;
      end_ = body_start + keep;
    } else {
      request_end_ = decoded_to_;
      body_ = chunked_body_;
      return Dispatch();
    }
  } else if (end_ >= request_end_) {
    body_ = std::string_view(in_.data() + start_ + head_.size, head_.content_length);
    return Dispatch();
  } else if (request_end_ > in_.size()) {
    in_.resize(request_end_);  // room for the whole body: one read may do
  }
  if (head_.expect_continue && !continue_sent_ && head_.minor_version >= 1) {
    continue_sent_ = true;
    static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    return asio::async_write(socket_, asio::buffer(k100.data(), k100.size()),
                             [self = shared_from_this()](boost::system::error_code ec, size_t) {
                               if (ec) return;
                               self->Read();
                             });
  }
  Read();
}

void Http1Connection::Fail(int status, std::string message) {
  // The rest of the stream cannot be trusted to be framed: answer once, then close.
  busy_ = true;
  keep_alive_ = false;
  minor_version_ = 1;
  is_head_ = false;
  Reply(JsonError(status, message));
}

void Http1Connection::Dispatch() {
  busy_ = true;
  keep_alive_ = head_.keep_alive;
  minor_version_ = head_.minor_version;
  is_head_ = head_.method == "HEAD";
  server_->impl_->handler(shared_from_this());
}

void Http1Connection::Reply(Response r) {
  asio::dispatch(*loop_, [self = shared_from_this(), r = std::move(r)]() mutable {
    std::string fields;
    AppendFields(r, &fields);
    self->local_body_ = std::move(r.body());
    self->SendForwarded(r.result_int(), {}, fields, self->local_body_);
  });
}

void Http1Connection::SendForwarded(int status, std::string_view reason, std::string_view fields, std::string_view body,
                                    std::optional<uint64_t> head_length) {
  const bool keep = keep_alive_ && !closing_;
  out_head_.clear();
  AppendStatusLine(&out_head_, minor_version_, status, reason);
  out_head_.append(fields);
  // A HEAD answer announces the GET answer's length.
  AppendFraming(&out_head_, status, is_head_ && head_length ? *head_length : body.size(),
                                minor_version_, keep);
  keep_alive_ = keep;
  // A HEAD answer has no body (RFC 9110 9.3.2): one would be read as the next answer.
  out_body_ = is_head_ ? std::string_view() : body;
  Write();
}

void Http1Connection::Write() {
  const std::array<asio::const_buffer, 2> bytes{asio::buffer(out_head_), asio::buffer(out_body_.data(), out_body_.size())};
  asio::async_write(socket_, bytes, [self = shared_from_this()](boost::system::error_code ec, size_t) {
    if (ec || !self->keep_alive_) {
      boost::system::error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
      self->socket_.close(ignored);
      return;
    }
    self->Finished();
  });
}

void Http1Connection::Finished() {
  busy_ = false;
  // What follows the request (a pipelined one) moves to the front.
  const size_t rest = end_ - request_end_;
  if (rest > 0) std::memmove(in_.data(), in_.data() + request_end_, rest);
  start_ = 0;
  end_ = rest;
  request_end_ = 0;
  head_parsed_ = false;
  chunked_.reset();
  continue_sent_ = false;
  body_ = {};
  out_body_ = {};
  if (in_.size() > kKeptBuffer && end_ < kInitialBuffer) {
    in_.resize(kInitialBuffer);
    in_.shrink_to_fit();
  }
  if (local_body_.capacity() > kKeptBuffer) std::string().swap(local_body_);
  if (forward_.capacity() > kKeptBuffer) std::string().swap(forward_);
  if (decoded_.capacity() > kKeptBuffer) std::string().swap(decoded_);
  if (chunked_body_.capacity() > kKeptBuffer) std::string().swap(chunked_body_);
  if (closing_ && end_ == 0) return Close();
  if (end_ > 0) return Parse();
  Read();
}

Http1Server::Http1Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Http1Server::~Http1Server() { Stop(0); }

Result<std::unique_ptr<Http1Server>> Http1Server::Create(Http1ServerOptions options, Handler handler) {
  auto impl = std::make_unique<Impl>();
  impl->loops = std::make_unique<EventLoops>(options.threads, options.name);
  impl->options = std::move(options);
  impl->handler = std::move(handler);
  auto server = std::unique_ptr<Http1Server>(new Http1Server(std::move(impl)));
  server->impl_->owner = server.get();
  return server;
}

Status Http1Server::Start() {
  Impl& s = *impl_;
  return s.loops->Start(s.options.address, s.options.port,
                        [&s](EventLoops::Socket socket, asio::io_context* loop) {
                          auto c = std::make_shared<Http1Connection>(s.owner, loop, std::move(socket));
                          {
                            std::lock_guard lock(s.live_mu);
                            s.live.remove_if([](const std::weak_ptr<Http1Connection>& w) { return w.expired(); });
                            s.live.push_back(c);
                          }
                          c->Start();
                        });
}

uint16_t Http1Server::port() const { return impl_->loops->port(); }

void Http1Server::Stop(int grace_ms) {
  Impl& s = *impl_;
  s.loops->StopAccepting();
  std::vector<std::shared_ptr<Http1Connection>> open;
  {
    std::lock_guard lock(s.live_mu);
    for (auto& w : s.live)
      if (auto p = w.lock()) open.push_back(std::move(p));
    s.live.clear();
  }
  for (auto& c : open) asio::post(*c->loop(), [c] { c->Close(); });
  open.clear();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (s.connections.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s.loops->StopLoops();
}

}  // namespace ferry::frontend::http
