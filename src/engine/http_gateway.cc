#include "engine/http_gateway.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>
#include <random>

#include "core/cpu.h"
#include "core/log.h"
#include "engine/engine_metrics.h"
#include "engine/statistics_gather.h"
#include "frontend/http/http1_server.h"
#include "frontend/http/http_server.h"
#include "frontend/http/write_now.h"
#include "protocol/v2_json.h"

namespace ferry::engine {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using frontend::http::Http1Connection;
using frontend::http::Http1Server;
using frontend::http::Http1ServerOptions;
using frontend::http::Response;
namespace http1 = frontend::http::http1;

namespace {

Response Json(int status, std::string body) { return frontend::http::JsonResponse(status, std::move(body)); }
Response Error(int status, std::string_view message) { return frontend::http::JsonError(status, message); }

Response Busy(std::string_view message) {
  Response r = Error(503, message);
  r.set(bhttp::field::retry_after, "1");
  return r;
}

constexpr size_t kMaxResponseHead = 64 * 1024;

std::minstd_rand& Rng() {
  thread_local std::minstd_rand rng(std::random_device{}());
  return rng;
}

// Hop-by-hop fields (RFC 9110 7.6.1) and framing: each side of the gateway has its own.
bool HopByHop(std::string_view name) {
  using http1::EqualsIgnoreCase;
  switch (name.size()) {
    case 2: return EqualsIgnoreCase(name, "te");
    case 6: return EqualsIgnoreCase(name, "expect");  // the gateway has read the whole body
    case 7: return EqualsIgnoreCase(name, "trailer") || EqualsIgnoreCase(name, "upgrade");
    case 10: return EqualsIgnoreCase(name, "connection") || EqualsIgnoreCase(name, "keep-alive");
    case 14: return EqualsIgnoreCase(name, "content-length");
    case 16: return EqualsIgnoreCase(name, "proxy-connection");
    case 17: return EqualsIgnoreCase(name, "transfer-encoding");
    default: return false;
  }
}

void AppendField(std::string* out, std::string_view name, std::string_view value) {
  out->append(name);
  out->append(": ");
  out->append(value);
  out->append("\r\n");
}

// "{model}/stats" or "{model}/versions/{v}/stats" (the path after /v2/models/).
bool IsStatistics(std::string_view rest) {
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view tail = rest.substr(slash + 1);
  if (tail == "stats") return true;
  constexpr std::string_view kVersions = "versions/";
  if (tail.substr(0, kVersions.size()) != kVersions) return false;
  tail.remove_prefix(kVersions.size());
  const size_t v = tail.find('/');
  return v != std::string_view::npos && v > 0 && tail.substr(v + 1) == "stats";
}

}  // namespace

// What an exchange needs of the gateway.
struct GatewayCore {
  HttpGatewayOptions options;
  Router* router = nullptr;
  std::atomic<uint64_t> requests{0}, retries{0}, upstream_errors{0};
};

struct HttpGateway::Impl : GatewayCore {
  std::unique_ptr<Http1Server> server;
  void Handle(std::shared_ptr<Http1Connection> client);
  Response Index(const RouteTable& table) const;
  // A model's statistics summed over every routable replica of its deployment (all
  // revisions), not admitted against max_in_flight: a monitoring read, not inference.
  void Statistics(std::string target, const DeploymentRoute& dep, std::shared_ptr<Http1Connection> client) const;
};

// One request on its way to a replica and back, on the event loop of the client's
// connection (its upstream connection, timer and answer all stay on that thread). Owned
// by the callbacks of the operation in progress (one at a time). The request's bytes
// are the client connection's (its head and body stay put until it is answered), and
// the replica's answer is read into that connection's buffer, from which it is written
// back: the head is rewritten (hop-by-hop fields dropped, framing set anew), the body
// is not touched.
class Exchange : public std::enable_shared_from_this<Exchange>, public ConcurrencyLimiter::Waiter {
 public:
  Exchange(GatewayCore* gw, std::shared_ptr<Http1Connection> client, std::shared_ptr<const RouteTable> table,
           const DeploymentRoute* dep, std::string_view model)
      : gw_(gw), loop_(client->loop()), client_(std::move(client)), table_(std::move(table)), dep_(dep),
        deadline_(std::chrono::steady_clock::now() + std::chrono::milliseconds(dep->request_timeout_ms)) {
    const http1::Head& h = client_->head();
    if (gw_->options.tracing.exporter) {
      trace_ = GatewayTrace(&gw_->options.tracing, h.Find("traceparent"));
      if (trace_.sampled()) model_ = model;
    }
    // The request line and fields the replica gets, but for a traceparent of our own
    // (per try) and the blank line: HTTP/1.1 keep-alive, the body always whole.
    std::string& head = client_->upstream_head();
    head.clear();
    head.append(h.method);
    head.push_back(' ');
    head.append(h.target);
    head.append(" HTTP/1.1\r\n");
    for (const http1::Field& f : h.fields) {
      if (HopByHop(f.name) || (trace_.on() && http1::EqualsIgnoreCase(f.name, "traceparent"))) continue;
      AppendField(&head, f.name, f.value);
    }
    if (h.has_content_length || h.chunked || !client_->body().empty())
      AppendField(&head, "Content-Length", std::to_string(client_->body().size()));
    prefix_size_ = head.size();
  }
  ~Exchange() override {
    StopWaiting();
    // Queued when its loop stopped (the gateway is stopping): its entry goes too.
    if (queued_) dep_->load->limiter.Cancel(this);
    ReleaseSlot();
    dep_->load->in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

  void Start() {
    if (waiting_) Refresh();
    // Under gateway.max_concurrency a request takes a slot before it goes to a replica
    // (once one is ready: the cold-start wait below comes first, and has its own bound).
    if (dep_->max_concurrency > 0 && !holds_slot_ && HasRoutableReplica(*dep_)) return Queue();
    const RevisionRoute* rev = nullptr;
    ep_ = Router::Pick(*dep_, nullptr, Rng(), &rev);
    if (ep_) {
      StopWaiting(/*routed=*/true);
      routed_ = std::chrono::steady_clock::now();
      revision_ = rev;
      rev->load->arrivals.fetch_add(1, std::memory_order_relaxed);
      return Send(/*pooled=*/true);
    }
    // No ready replica (scaled to zero, all restarting): wait here, bounded by the
    // deployment's admission limit and cold_start_timeout, while the control loop sees
    // the waiting request and starts one. Polled: a cold start takes ~1 s, a 10 ms poll
    // costs nothing next to it and needs no wake-up plumbing from the supervisor.
    const auto now = std::chrono::steady_clock::now();
    if (!waiting_) {
      waiting_ = true;
      wait_start_ = now;
      dep_->load->waiting.fetch_add(1, std::memory_order_relaxed);
    }
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - wait_start_).count();
    // A client that gave up frees its place in the bounded wait at once.
    if (client_->Gone()) return Reply(Error(499, "the client closed the connection"));
    const bool degraded = !dep_->CanStartReplica();
    if (degraded || waited >= dep_->cold_start_timeout_ms || now >= deadline_) {
      if (dep_->metrics) dep_->metrics->rejected_no_replica->Increment();
      return Reply(Busy("deployment '" + dep_->name + "' has no ready replica" +
                        (degraded ? ": its revisions are degraded"
                                  : " (waited " + std::to_string(waited) + " ms, gateway.cold_start_timeout)")));
    }
    if (!timer_) timer_.emplace(*loop_);
    timer_->expires_after(std::chrono::milliseconds(10));
    timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Reply(Error(503, "the gateway is stopping"));
      self->Start();
    });
  }

  // ConcurrencyLimiter::Waiter: a slot freed on another thread is ours; carry on here.
  void Grant() override {
    asio::post(*loop_, [self = shared_from_this()] { self->OnGranted(); });
  }

 private:
  void Queue() {
    switch (dep_->load->limiter.Acquire(shared_from_this())) {
      case ConcurrencyLimiter::Outcome::kAcquired:
        holds_slot_ = true;
        return Start();
      case ConcurrencyLimiter::Outcome::kQueueFull:
        if (dep_->metrics) dep_->metrics->rejected_queue_full->Increment();
        return Reply(Busy(QueueFullMessage(*dep_)));
      case ConcurrencyLimiter::Outcome::kQueued:
        queued_ = true;
        queue_start_ = std::chrono::steady_clock::now();
        return WaitInQueue();
    }
  }

  // Wakes at the queue timeout (or the request's deadline, if sooner), and every
  // kClientWatchMs to see whether the client left, which frees its place at once.
  void WaitInQueue() {
    const auto now = std::chrono::steady_clock::now();
    const auto expiry = std::min(queue_start_ + std::chrono::milliseconds(dep_->queue_timeout_ms), deadline_);
    if (!timer_) timer_.emplace(*loop_);
    timer_->expires_after(std::min<std::chrono::steady_clock::duration>(
        expiry - now, std::chrono::milliseconds(kClientWatchMs)));
    timer_->async_wait([self = shared_from_this(), expiry](beast::error_code ec) {
      if (!self->queued_) return;  // granted meanwhile (the grant cancelled this wait)
      const bool gone = self->client_->Gone();
      const bool expired = std::chrono::steady_clock::now() >= expiry;
      if (!ec && !gone && !expired) return self->WaitInQueue();
      // Out of the queue, unless a slot was granted meanwhile: then OnGranted is on its way.
      if (!self->dep_->load->limiter.Cancel(self.get())) return;
      self->queued_ = false;
      if (ec) return self->Reply(Error(503, "the gateway is stopping"));
      if (gone) return self->Reply(Error(499, "the client closed the connection"));
      if (self->dep_->metrics) self->dep_->metrics->rejected_queue_timeout->Increment();
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                                self->queue_start_);
      self->Reply(Busy(QueueTimeoutMessage(*self->dep_, waited.count(), expiry >= self->deadline_)));
    });
  }

  void OnGranted() {
    queued_ = false;
    holds_slot_ = true;
    if (timer_) timer_->cancel();
    if (dep_->metrics)
      dep_->metrics->queue_wait->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - queue_start_).count());
    Start();
  }

  void ReleaseSlot() {
    if (!holds_slot_) return;
    holds_slot_ = false;
    dep_->load->limiter.Release();
  }

  // A waiting request looks for replicas in the newest route table: the one it was
  // admitted with predates the replica being started for it.
  void Refresh() {
    auto table = gw_->router->Snapshot();
    for (const auto& d : table->deployments)
      if (d->name == dep_->name && d->load == dep_->load) {
        dep_ = d.get();
        table_ = std::move(table);
        return;
      }
  }

  void StopWaiting(bool routed = false) {
    if (!waiting_) return;
    waiting_ = false;
    dep_->load->waiting.fetch_sub(1, std::memory_order_relaxed);
    if (routed && dep_->metrics)
      dep_->metrics->cold_start_wait->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start_).count());
  }

  // Every answer of an admitted request goes through here (counted once: an exchange
  // answers exactly once).
  // Answers with a response of the gateway's own (an error: the request never reached a
  // replica, or none answered).
  void Reply(Response r) {
    Finish(r.result_int(), r.body());
    client_->Reply(std::move(r));
  }

  // The bookkeeping of an answer: the slot, the trace, the metrics.
  void Finish(int status, std::string_view body) {
    ReleaseSlot();  // the next queued request may go while this answer is written
    if (trace_.sampled()) {
      // A failed answer's span says why: the JSON error body, as the client sees it.
      body = body.substr(0, 512);
      trace_.Finish({"http", dep_->name, revision_ ? std::string_view(revision_->name) : std::string_view(), model_,
                     "http.response.status_code", status, status >= 500, status >= 500 ? body : std::string_view()});
    }
    if (dep_->metrics)
      dep_->metrics->Answered(status,
                              std::chrono::duration<double>(std::chrono::steady_clock::now() - admitted_).count());
  }

  void Send(bool pooled) {
    ep_->outstanding.fetch_add(1, std::memory_order_relaxed);
    std::string& head = client_->upstream_head();
    head.resize(prefix_size_);
    // Each try at a replica is a span of its own, named in the traceparent it carries.
    if (trace_.on()) AppendField(&head, "traceparent", trace_.StartAttempt(ep_->id));
    head.append("\r\n");
    conn_ = pooled ? ep_->pool.Take(loop_) : nullptr;
    Watch();
    if (conn_) return Write();
    conn_ = std::make_unique<UpstreamPool::Connection>(*loop_);
    conn_->async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), ep_->port),
                         [self = shared_from_this()](beast::error_code ec) {
                           if (ec) return self->Failed(ec.message(), "connect", false, self->timed_out_);
                           beast::error_code ignored;
                           self->conn_->set_option(tcp::no_delay(true), ignored);
                           self->Write();
                         });
  }

  // The head and the body in one gather write: at once when the socket takes it whole
  // (no posted completion, write_now.h), the rest asynchronously.
  void Write() {
    frontend::http::WriteNowOrLater(*conn_, client_->upstream_head(), client_->body(),
                                    [self = shared_from_this()](beast::error_code ec, bool) { self->Sent(ec); });
  }

  void Sent(beast::error_code ec) {
    if (ec) return Failed(ec.message(), "send", false, timed_out_);
    received_ = 0;
    response_end_ = 0;
    AwaitAnswer();
  }

  // The first read of the answer waits for the socket to become readable and then reads
  // it directly: the replica cannot have answered a request just sent, so asio's
  // speculative read would only fail (EAGAIN), and the completion it posts would cost the
  // loop another epoll pass. Nothing can arrive unasked on a replica connection, so the
  // readiness that ends the wait comes after it started.
  void AwaitAnswer() {
    conn_->async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Failed(ec.message(), "receive", false, self->timed_out_);
      std::string& in = self->client_->forward_buffer();
      if (in.size() < 16 * 1024) in.resize(16 * 1024);
      const ssize_t n = ::recv(self->conn_->native_handle(), in.data(), in.size(), MSG_DONTWAIT);
      if (n > 0) {
        self->received_ = static_cast<size_t>(n);
        return self->Parse();
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return self->ReadMore();
      // The replica closed or reset the connection before answering (a pooled one it had
      // closed, or it died): nothing was received, so the request may go to another replica.
      const beast::error_code why = n == 0 ? beast::error_code(asio::error::eof)
                                           : beast::error_code(errno, boost::system::system_category());
      self->Failed(why.message(), "receive", false, self->timed_out_);
    });
  }

  // Reads the replica's answer into the client connection's forward buffer, far enough
  // to know where it ends: its head, then Content-Length bytes, a chunked body, or (with
  // neither) everything until the replica closes.
  void ReadMore() {
    std::string& in = client_->forward_buffer();
    // Room for the whole answer when its length is known, else for more of it.
    const bool known = response_end_ > received_;
    const size_t want = known ? response_end_ : received_ + 4096;
    if (in.size() < want) in.resize(known ? want : std::max({want, in.size() * 2, size_t{16 * 1024}}));
    conn_->async_read_some(asio::buffer(in.data() + received_, in.size() - received_),
                           [self = shared_from_this()](beast::error_code ec, size_t n) {
                             self->received_ += n;
                             if (ec == asio::error::eof && self->until_close_) return self->Done(/*reuse=*/false);
                             if (ec)
                               return self->Failed(ec.message(), "receive", self->received_ > 0, self->timed_out_);
                             self->Parse();
                           });
  }

  void Parse() {
    std::string& in = client_->forward_buffer();
    const uint64_t max_body = gw_->options.max_body_bytes * 2;
    if (!head_done_) {
      http1::ParseResult r = http1::ParseResponseHead(std::string_view(in.data(), received_), kMaxResponseHead, &res_);
      if (r.state == http1::State::kIncomplete) return ReadMore();
      if (r.state == http1::State::kError) return Failed(r.error, "receive", true, false);
      if (res_.status < 200) {
        // An interim answer (100 Continue, 103): the final one follows.
        if (res_.status == 101) return Failed("the replica switched protocols (101)", "receive", true, false);
        std::memmove(in.data(), in.data() + res_.size, received_ - res_.size);
        received_ -= res_.size;
        return Parse();
      }
      head_done_ = true;
      parsed_at_ = in.data();
      body_start_ = res_.size;
      if (client_->is_head() || res_.status == 204 || res_.status == 304) {
        response_end_ = body_start_;
      } else if (res_.chunked) {
        chunked_.emplace(max_body);
        client_->decoded_body().clear();
        decoded_to_ = body_start_;
      } else if (res_.has_content_length) {
        if (res_.content_length > max_body)
          return Failed("the answer's body exceeds " + std::to_string(max_body) + " bytes", "receive", true, false);
        response_end_ = body_start_ + res_.content_length;
      } else {
        until_close_ = true;
      }
    }
    if (chunked_) {
      auto step = chunked_->Feed(std::string_view(in.data() + decoded_to_, received_ - decoded_to_),
                                 &client_->decoded_body());
      decoded_to_ += step.consumed;
      if (step.result.state == http1::State::kError) return Failed(step.result.error, "receive", true, false);
      if (step.result.state == http1::State::kDone) {
        response_end_ = decoded_to_;
        return Done(/*reuse=*/received_ == response_end_);
      }
      // The decoded part of the buffer is not needed any more (the head stays).
      std::memmove(in.data() + body_start_, in.data() + decoded_to_, received_ - decoded_to_);
      received_ -= decoded_to_ - body_start_;
      decoded_to_ = body_start_;
      return ReadMore();
    }
    if (until_close_) {
      if (received_ - body_start_ > max_body)
        return Failed("the answer's body exceeds " + std::to_string(max_body) + " bytes", "receive", true, false);
      return ReadMore();
    }
    if (received_ < response_end_) return ReadMore();
    // After HEAD the connection is not reused: a replica that sends the body anyway
    // (ferry serve does) would leave it to be read as the next answer.
    Done(/*reuse=*/received_ == response_end_ && !client_->is_head());
  }

  // While a try is in progress, look every kClientWatchMs whether the client is still
  // there and the deadline not passed; if not, close the upstream connection, which
  // ends the pending operation and is how the replica learns it too (it drops the
  // request from its queue or stops the execution, as for any client of ferry serve
  // that goes away). One timer per exchange does both: a deadline per socket operation
  // (Beast's basic_stream) cost a timer's arming and cancelling on every operation.
  // Quick answers never see a check.
  static constexpr int kClientWatchMs = 50;
  void Watch() {
    if (!watch_) watch_.emplace(*loop_);
    watch_->expires_at(std::min(std::chrono::steady_clock::now() + std::chrono::milliseconds(kClientWatchMs), deadline_));
    watch_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || !self->conn_) return;  // answered (or failed) meanwhile
      if (std::chrono::steady_clock::now() >= self->deadline_) self->timed_out_ = true;
      else if (self->client_->Gone()) self->abandoned_ = true;
      else return self->Watch();
      beast::error_code ignored;
      self->conn_->shutdown(tcp::socket::shutdown_both, ignored);
      self->conn_->close(ignored);  // the pending operation ends with operation_aborted
    });
  }

  void Failed(std::string_view error, const char* stage, bool got_bytes, bool timeout) {
    if (timeout) error = "timed out";  // the watch closed the socket: not the socket's own error
    ep_->outstanding.fetch_sub(1, std::memory_order_relaxed);
    if (trace_.sampled()) trace_.EndAttempt(std::string(stage) + ": " + std::string(error));
    conn_.reset();
    head_done_ = until_close_ = false;
    chunked_.reset();
    if (watch_) watch_->cancel();
    if (abandoned_) return Reply(Error(499, "the client closed the connection"));
    if (const ReplicaErrorCounters* c = ep_->errors.load(std::memory_order_acquire))
      (timeout ? c->timeout : c->unavailable)->Increment();
    if (!got_bytes && !timeout && !retried_) {
      // Nothing came back, so the replica did not answer: safe to send again.
      retried_ = true;
      gw_->retries.fetch_add(1, std::memory_order_relaxed);
      if (dep_->metrics) dep_->metrics->retries->Increment();
      FERRY_LOG(kDebug, "upstream failed before responding; retrying",
                ("replica", ep_->id)("stage", stage)("error", error));
      // In the newest route table: the replica may have failed because a rolling update
      // drained it, and the table it was picked from knows only its (draining) siblings.
      Refresh();
      std::shared_ptr<ReplicaEndpoint> next = Router::Pick(*dep_, ep_.get(), Rng(), &revision_);
      if (next) {
        ep_ = std::move(next);
        return Send(/*pooled=*/false);
      }
    }
    gw_->upstream_errors.fetch_add(1, std::memory_order_relaxed);
    if (timeout)
      return Reply(Error(504, "deployment '" + dep_->name + "': replica " + ep_->id + " did not answer within " +
                                     std::to_string(dep_->request_timeout_ms) + " ms"));
    Reply(Error(502, "deployment '" + dep_->name + "': replica " + ep_->id + " failed (" + stage +
                            "): " + std::string(error)));
  }

  // The replica's whole answer is in the forward buffer: its head goes back rewritten,
  // its body as it is (or decoded, when it came chunked).
  void Done(bool reuse) {
    trace_.EndAttempt({});
    std::string_view in(client_->forward_buffer().data(), received_);
    // The head's views point where the buffer was when it was parsed; a longer body may
    // have moved it since.
    if (in.data() != parsed_at_) http1::ParseResponseHead(in, kMaxResponseHead, &res_);
    std::string_view body = chunked_ ? std::string_view(client_->decoded_body())
                            : until_close_ ? in.substr(body_start_)
                                           : in.substr(body_start_, response_end_ - body_start_);
    reuse = reuse && res_.keep_alive && !until_close_;
    std::string& fields = client_->upstream_head();  // sent already: reused for the answer's
    fields.clear();
    for (const http1::Field& f : res_.fields)
      if (!HopByHop(f.name)) AppendField(&fields, f.name, f.value);
    // Which revision answered: for clients and tests of a traffic split (as Seldon's
    // x-seldon-route); also what a sticky route will send back later.
    AppendField(&fields, "Ferry-Revision", revision_->name);
    ep_->outstanding.fetch_sub(1, std::memory_order_relaxed);
    if (watch_) watch_->cancel();
    revision_->load->latency.Record(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - routed_).count());
    if (reuse) ep_->pool.Put(loop_, std::move(conn_));
    conn_.reset();
    Finish(res_.status, body);
    client_->SendForwarded(res_.status, res_.reason, fields, body,
                           res_.has_content_length ? std::optional<uint64_t>(res_.content_length) : std::nullopt);
  }

  GatewayCore* gw_;
  asio::io_context* loop_;  // the client connection's loop: not owned
  std::shared_ptr<Http1Connection> client_;  // the request and the buffers of the answer
  std::shared_ptr<const RouteTable> table_;  // keeps dep_ and the endpoints alive
  const DeploymentRoute* dep_;
  const std::chrono::steady_clock::time_point admitted_ = std::chrono::steady_clock::now();
  const std::chrono::steady_clock::time_point deadline_;
  std::chrono::steady_clock::time_point routed_;  // first picked a replica (cold-start wait excluded)
  std::shared_ptr<ReplicaEndpoint> ep_;
  const RevisionRoute* revision_ = nullptr;  // ep_'s revision, inside table_
  std::unique_ptr<UpstreamPool::Connection> conn_;
  size_t prefix_size_ = 0;  // of the upstream head, without a traceparent and the blank line
  // Reading the replica's answer (http1_framing): into client_->forward_buffer().
  http1::Head res_;
  const char* parsed_at_ = nullptr;  // where the buffer was when res_ was parsed
  bool head_done_ = false;
  bool until_close_ = false;  // no Content-Length, not chunked: the body ends with the connection
  size_t received_ = 0, body_start_ = 0, response_end_ = 0, decoded_to_ = 0;
  std::optional<http1::ChunkedDecoder> chunked_;
  bool retried_ = false;
  bool abandoned_ = false;  // the client left while a replica worked on the request
  bool timed_out_ = false;  // the deadline passed during a try
  std::optional<asio::steady_timer> watch_;  // Watch's
  bool waiting_ = false;  // counted in dep_->load->waiting
  std::chrono::steady_clock::time_point wait_start_;
  std::optional<asio::steady_timer> timer_;  // the cold-start wait's, or the queue's
  bool holds_slot_ = false;  // a slot of dep_->load->limiter (gateway.max_concurrency)
  bool queued_ = false;      // in that limiter's queue, waiting for Grant
  std::chrono::steady_clock::time_point queue_start_;
  GatewayTrace trace_;  // off unless the engine traces
  std::string model_;   // for the trace (set only when sampled)
};

Response HttpGateway::Impl::Index(const RouteTable& table) const {
  std::vector<std::pair<std::string, bool>> models;
  for (const auto& [name, d] : table.by_model) models.emplace_back(name, HasRoutableReplica(*d));
  std::sort(models.begin(), models.end());
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartArray();
  for (const auto& [name, ready] : models) {
    w.StartObject();
    w.Key("name");
    w.String(name.c_str());
    w.Key("state");
    w.String(ready ? "READY" : "UNAVAILABLE");
    if (!ready) {
      w.Key("reason");
      w.String("no ready replica");
    }
    w.EndObject();
  }
  w.EndArray();
  return Json(200, std::string(sb.GetString(), sb.GetSize()));
}

void HttpGateway::Impl::Statistics(std::string target, const DeploymentRoute& dep,
                                   std::shared_ptr<Http1Connection> client) const {
  asio::io_context* loop = client->loop();
  std::vector<std::shared_ptr<ReplicaEndpoint>> replicas;
  for (const auto& r : dep.revisions)
    for (const auto& e : r.replicas)
      if (e->routable.load(std::memory_order_relaxed)) replicas.push_back(e);
  GatherStatistics(loop, std::move(target), std::move(replicas), std::chrono::milliseconds(dep.request_timeout_ms),
                   [client = std::move(client)](int status, std::string body) mutable {
                     client->Reply(Json(status, std::move(body)));
                   });
}

void HttpGateway::Impl::Handle(std::shared_ptr<Http1Connection> client) {
  requests.fetch_add(1, std::memory_order_relaxed);
  const http1::Head& req = client->head();
  std::string_view target = req.target;
  std::string_view path = target.substr(0, target.find('?'));
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool post = req.method == "POST";
  auto table = router->Snapshot();
  auto respond = [&client](Response r) { client->Reply(std::move(r)); };

  constexpr std::string_view kModels = "/v2/models/";
  if (path.substr(0, kModels.size()) == kModels) {
    std::string_view rest = path.substr(kModels.size());
    std::string model;
    if (!frontend::http::PercentDecode(rest.substr(0, rest.find('/')), &model))
      return respond(Error(400, "malformed percent-encoding in the URL path"));
    if (model == "stats" && rest.find('/') == std::string_view::npos)
      return respond(Error(501, "the gateway does not aggregate statistics; ask for one model: /v2/models/{name}/stats"));
    auto it = table->by_model.find(model);
    if (it == table->by_model.end())
      return respond(Error(404, "Request for unknown model: '" + model + "' is not found"));
    const DeploymentRoute* dep = it->second.get();
    if (IsStatistics(rest)) {
      if (!get) return respond(Error(405, "Method Not Allowed"));
      return Statistics(std::string(target), *dep, std::move(client));
    }
    if (dep->load->in_flight.fetch_add(1, std::memory_order_relaxed) >= dep->max_in_flight) {
      dep->load->in_flight.fetch_sub(1, std::memory_order_relaxed);
      dep->load->rejected.fetch_add(1, std::memory_order_relaxed);
      if (dep->metrics) {
        dep->metrics->rejected_limit->Increment();
        dep->metrics->Answered(503, 0);
      }
      return respond(Busy("deployment '" + dep->name + "' has " + std::to_string(dep->max_in_flight) +
                          " requests in flight, its limit (gateway.max_in_flight)"));
    }
    auto ex = std::make_shared<Exchange>(this, std::move(client), std::move(table), dep, model);
    // Start does not block (a pick, then asynchronous operations), so it runs right here.
    ex->Start();
    return;
  }
  if (path == "/v2/health/live") {
    if (!get) return respond(Error(405, "Method Not Allowed"));
    return respond(Json(200, R"({"live":true})"));
  }
  if (path == "/v2/health/ready") {
    if (!get) return respond(Error(405, "Method Not Allowed"));
    if (GatewayReady(*table)) return respond(Json(200, R"({"ready":true})"));
    return respond(Error(503, "a deployment has no ready replica"));
  }
  if (path == "/v2" || path == "/v2/") {
    if (!get) return respond(Error(405, "Method Not Allowed"));
    return respond(Json(200, R"({"name":"ferry-engine","version":")" + options.version + R"(","extensions":[]})"));
  }
  if (path == "/v2/repository/index") {
    if (!post) return respond(Error(405, "Method Not Allowed"));
    return respond(Index(*table));
  }
  respond(Error(404, "Not Found"));
}

HttpGateway::HttpGateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpGateway::~HttpGateway() { Stop(0); }

Result<std::unique_ptr<HttpGateway>> HttpGateway::Create(HttpGatewayOptions options, Router* router) {
  if (options.threads <= 0) options.threads = AvailableCores();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->router = router;
  Http1ServerOptions http;
  http.address = options.address;
  http.port = options.port;
  http.threads = options.threads;
  http.max_body_bytes = options.max_body_bytes;
  http.name = "gateway";
  Impl* raw = impl.get();
  FERRY_ASSIGN_OR_RETURN(impl->server, Http1Server::Create(http, [raw](std::shared_ptr<Http1Connection> client) {
                           raw->Handle(std::move(client));
                         }));
  return std::unique_ptr<HttpGateway>(new HttpGateway(std::move(impl)));
}

Status HttpGateway::Start() { return impl_->server->Start(); }

uint16_t HttpGateway::port() const { return impl_->server->port(); }

void HttpGateway::Stop(int grace_ms) {
  if (impl_->server) impl_->server->Stop(grace_ms);
  // Pooled sockets belong to the HTTP loops: close them while the loops still exist.
  auto table = impl_->router->Snapshot();
  for (const auto& d : table->deployments)
    for (const auto& r : d->revisions)
      for (const auto& e : r.replicas) e->pool.Clear();
}

HttpGateway::Counters HttpGateway::counters() const {
  return {impl_->requests.load(), impl_->retries.load(), impl_->upstream_errors.load()};
}

}  // namespace ferry::engine
