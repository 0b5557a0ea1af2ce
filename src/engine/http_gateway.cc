#include "engine/http_gateway.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <optional>
#include <random>

#include "core/cpu.h"
#include "core/log.h"
#include "engine/engine_metrics.h"
#include "engine/statistics_gather.h"
#include "frontend/http/http_server.h"
#include "protocol/v2_json.h"

namespace ferry::engine {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using frontend::http::Request;
using frontend::http::Responder;
using frontend::http::Response;

namespace {

Response Json(int status, std::string body) { return frontend::http::JsonResponse(status, std::move(body)); }
Response Error(int status, std::string_view message) { return frontend::http::JsonError(status, message); }

Response Busy(std::string_view message) {
  Response r = Error(503, message);
  r.set(bhttp::field::retry_after, "1");
  return r;
}

std::minstd_rand& Rng() {
  thread_local std::minstd_rand rng(std::random_device{}());
  return rng;
}

// Hop-by-hop fields (RFC 9110 7.6.1) and framing: each side of the gateway has its own.
bool HopByHop(bhttp::field f) {
  switch (f) {
    case bhttp::field::connection:
    case bhttp::field::keep_alive:
    case bhttp::field::proxy_connection:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::transfer_encoding:
    case bhttp::field::upgrade:
    case bhttp::field::content_length:
      return true;
    default:
      return false;
  }
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
  std::unique_ptr<frontend::http::HttpServer> server;
  void Handle(Request&& req, Responder respond, frontend::http::ClientGone client_gone);
  Response Index(const RouteTable& table) const;
  // A model's statistics summed over every routable replica of its deployment (all
  // revisions), not admitted against max_in_flight: a monitoring read, not inference.
  void Statistics(std::string target, const DeploymentRoute& dep, Responder respond) const;
};

// One request on its way to a replica and back, on the event loop of the client's
// connection (its upstream connection, timer and answer all stay on that thread). Owned
// by the callbacks of the operation in progress (one at a time).
class Exchange : public std::enable_shared_from_this<Exchange>, public ConcurrencyLimiter::Waiter {
 public:
  Exchange(GatewayCore* gw, asio::io_context* loop, Request req, Responder respond,
           frontend::http::ClientGone client_gone, std::shared_ptr<const RouteTable> table, const DeploymentRoute* dep,
           std::string_view model)
      : gw_(gw), loop_(loop), req_(std::move(req)), respond_(std::move(respond)),
        client_gone_(std::move(client_gone)), table_(std::move(table)), dep_(dep),
        deadline_(std::chrono::steady_clock::now() + std::chrono::milliseconds(dep->request_timeout_ms)) {
    if (gw_->options.tracing.exporter) {
      auto tp = req_.find("traceparent");
      trace_ = GatewayTrace(&gw_->options.tracing, tp == req_.end() ? std::string_view()
                                                                    : std::string_view(tp->value().data(), tp->value().size()));
      if (trace_.sampled()) model_ = model;
    }
    req_.keep_alive(true);
    // The gateway has read the whole body already; the replica must not wait for a 100.
    req_.erase(bhttp::field::expect);
    req_.prepare_payload();
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
    if (client_gone_ && client_gone_()) return Reply(Error(499, "the client closed the connection"));
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
      const bool gone = self->client_gone_ && self->client_gone_();
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
  void Reply(Response r) {
    ReleaseSlot();  // the next queued request may go while this answer is written
    if (trace_.sampled()) {
      const int status = r.result_int();
      // A failed answer's span says why: the JSON error body, as the client sees it.
      std::string_view body(r.body().data(), std::min<size_t>(r.body().size(), 512));
      trace_.Finish({"http", dep_->name, revision_ ? std::string_view(revision_->name) : std::string_view(), model_,
                     "http.response.status_code", status, status >= 500, status >= 500 ? body : std::string_view()});
    }
    if (dep_->metrics)
      dep_->metrics->Answered(r.result_int(),
                              std::chrono::duration<double>(std::chrono::steady_clock::now() - admitted_).count());
    respond_(std::move(r));
  }

  void Send(bool pooled) {
    ep_->outstanding.fetch_add(1, std::memory_order_relaxed);
    if (trace_.on()) {
      // Each try at a replica is a span of its own, named in the traceparent it carries.
      req_.set("traceparent", trace_.StartAttempt(ep_->id));
      head_.clear();
    }
    conn_ = pooled ? ep_->pool.Take(loop_) : nullptr;
    if (conn_) return Write();
    conn_ = std::make_unique<UpstreamPool::Connection>(loop_->get_executor());
    conn_->expires_at(deadline_);
    conn_->async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), ep_->port),
                         [self = shared_from_this()](beast::error_code ec) {
                           if (ec) return self->Failed(ec, "connect", false);
                           beast::error_code ignored;
                           self->conn_->socket().set_option(tcp::no_delay(true), ignored);
                           self->Write();
                         });
  }

  void Write() {
    conn_->expires_at(deadline_);
    // The head is written by hand and sent with the body in one gather write: Beast's
    // serializer costs more CPU than the bytes it produces (its buffer-sequence views).
    if (head_.empty()) {
      head_.reserve(256);
      auto add = [this](beast::string_view v) { head_.append(v.data(), v.size()); };
      add(req_.method_string());
      head_ += ' ';
      add(req_.target());
      head_ += " HTTP/1.1\r\n";
      for (const auto& f : req_) {
        add(f.name_string());
        head_ += ": ";
        add(f.value());
        head_ += "\r\n";
      }
      head_ += "\r\n";
    }
    const std::array<asio::const_buffer, 2> bytes{asio::buffer(head_), asio::buffer(req_.body())};
    asio::async_write(*conn_, bytes, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Failed(ec, "send", false);
      self->Read();
    });
  }

  void Read() {
    parser_.emplace();
    // An answer to HEAD announces a body it does not send.
    if (req_.method() == bhttp::verb::head) parser_->skip(true);
    parser_->body_limit(gw_->options.max_body_bytes * 2);
    parser_->header_limit(64 * 1024);
    buffer_.clear();
    bhttp::async_read(*conn_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Failed(ec, "receive", self->parser_->got_some());
      self->Done();
    });
    WatchClient();
  }

  // While a replica works on the request, look every kClientWatchMs whether the client
  // is still there; if it left, close the upstream connection, which is how the
  // replica learns it too (it drops the request from its queue or stops the execution,
  // as for any client of ferry serve that goes away). Quick answers never see a check.
  static constexpr int kClientWatchMs = 50;
  void WatchClient() {
    if (!client_gone_) return;
    if (!watch_) watch_.emplace(*loop_);
    watch_->expires_after(std::chrono::milliseconds(kClientWatchMs));
    watch_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || !self->conn_) return;  // answered (or failed) meanwhile
      if (!self->client_gone_()) return self->WatchClient();
      self->abandoned_ = true;
      beast::error_code ignored;
      self->conn_->socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->conn_->socket().close(ignored);  // the pending read ends with operation_aborted
    });
  }

  void Failed(beast::error_code ec, const char* stage, bool got_bytes) {
    ep_->outstanding.fetch_sub(1, std::memory_order_relaxed);
    if (trace_.sampled()) trace_.EndAttempt(std::string(stage) + ": " + ec.message());
    conn_.reset();
    if (watch_) watch_->cancel();
    if (abandoned_) return Reply(Error(499, "the client closed the connection"));
    const bool timeout = ec == beast::error::timeout;
    if (const ReplicaErrorCounters* c = ep_->errors.load(std::memory_order_acquire))
      (timeout ? c->timeout : c->unavailable)->Increment();
    if (!got_bytes && !timeout && !retried_) {
      // Nothing came back, so the replica did not answer: safe to send again.
      retried_ = true;
      gw_->retries.fetch_add(1, std::memory_order_relaxed);
      if (dep_->metrics) dep_->metrics->retries->Increment();
      FERRY_LOG(kDebug, "upstream failed before responding; retrying",
                ("replica", ep_->id)("stage", stage)("error", ec.message()));
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
                            "): " + ec.message()));
  }

  void Done() {
    trace_.EndAttempt({});
    auto& res = parser_->get();
    // After HEAD the connection is not reused: a replica that sends the body anyway
    // (ferry serve does) would leave it to be read as the next answer.
    const bool reuse = res.keep_alive() && parser_->is_done() && buffer_.size() == 0 &&
                       req_.method() != bhttp::verb::head;
    Response out = parser_->release();
    out.version(11);
    for (auto it = out.begin(); it != out.end();) it = HopByHop(it->name()) ? out.erase(it) : std::next(it);
    // Which revision answered: for clients and tests of a traffic split (as Seldon's
    // x-seldon-route); also what a sticky route will send back later.
    out.set("Ferry-Revision", revision_->name);
    ep_->outstanding.fetch_sub(1, std::memory_order_relaxed);
    if (watch_) watch_->cancel();
    revision_->load->latency.Record(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - routed_).count());
    if (reuse) ep_->pool.Put(loop_, std::move(conn_));
    conn_.reset();
    Reply(std::move(out));
  }

  GatewayCore* gw_;
  asio::io_context* loop_;  // the client connection's loop: not owned
  Request req_;
  Responder respond_;
  frontend::http::ClientGone client_gone_;  // may be empty
  std::shared_ptr<const RouteTable> table_;  // keeps dep_ and the endpoints alive
  const DeploymentRoute* dep_;
  const std::chrono::steady_clock::time_point admitted_ = std::chrono::steady_clock::now();
  const std::chrono::steady_clock::time_point deadline_;
  std::chrono::steady_clock::time_point routed_;  // first picked a replica (cold-start wait excluded)
  std::shared_ptr<ReplicaEndpoint> ep_;
  const RevisionRoute* revision_ = nullptr;  // ep_'s revision, inside table_
  std::unique_ptr<UpstreamPool::Connection> conn_;
  std::string head_;  // the request line and fields as sent upstream, made once
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  bool retried_ = false;
  bool abandoned_ = false;  // the client left while a replica worked on the request
  std::optional<asio::steady_timer> watch_;  // WatchClient's
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

void HttpGateway::Impl::Statistics(std::string target, const DeploymentRoute& dep, Responder respond) const {
  asio::io_context* loop = frontend::http::HttpServer::CurrentLoop();
  if (loop == nullptr) return respond(Error(500, "gateway: request handled outside an HTTP loop"));
  std::vector<std::shared_ptr<ReplicaEndpoint>> replicas;
  for (const auto& r : dep.revisions)
    for (const auto& e : r.replicas)
      if (e->routable.load(std::memory_order_relaxed)) replicas.push_back(e);
  GatherStatistics(loop, std::move(target), std::move(replicas), std::chrono::milliseconds(dep.request_timeout_ms),
                   [respond = std::move(respond)](int status, std::string body) mutable {
                     respond(Json(status, std::move(body)));
                   });
}

void HttpGateway::Impl::Handle(Request&& req, Responder respond, frontend::http::ClientGone client_gone) {
  requests.fetch_add(1, std::memory_order_relaxed);
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  const bool get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
  const bool post = req.method() == bhttp::verb::post;
  auto table = router->Snapshot();

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
      return Statistics(std::string(target), *dep, std::move(respond));
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
    asio::io_context* loop = frontend::http::HttpServer::CurrentLoop();  // Handle runs on one
    if (loop == nullptr) {
      dep->load->in_flight.fetch_sub(1, std::memory_order_relaxed);
      return respond(Error(500, "gateway: request handled outside an HTTP loop"));
    }
    auto ex = std::make_shared<Exchange>(this, loop, std::move(req), std::move(respond), std::move(client_gone),
                                         std::move(table), dep, model);
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
  frontend::http::HttpServerOptions http;
  http.address = options.address;
  http.port = options.port;
  http.threads = options.threads;
  http.max_body_bytes = options.max_body_bytes;
  http.name = "gateway";
  Impl* raw = impl.get();
  FERRY_ASSIGN_OR_RETURN(impl->server,
                         frontend::http::HttpServer::Create(
                             http, [raw](Request&& r, Responder done, frontend::http::ClientGone gone) {
                               raw->Handle(std::move(r), std::move(done), std::move(gone));
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
