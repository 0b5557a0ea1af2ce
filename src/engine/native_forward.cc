#include "engine/native_forward.h"

#include <boost/asio/steady_timer.hpp>
#include <grpcpp/support/byte_buffer.h>

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "protocol/grpc/grpc_codes.h"
#include "engine/engine_metrics.h"
#include "protocol/grpc/grpc_service.pb.h"

namespace ferry::engine::grpc_forward {
namespace asio = boost::asio;
using frontend::grpc_native::CallHandler;
using frontend::grpc_native::NativeCall;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

using namespace protocol::grpc_code;  // NOLINT: the gRPC status codes

// A request without a ready replica looks again this often (as the other transport).
constexpr milliseconds kWaitPoll{10};

// A limiter slot granted on another thread, carried to the call's loop.
class Ticket final : public ConcurrencyLimiter::Waiter {
 public:
  Ticket(std::weak_ptr<NativeCall> call, std::function<void()> granted)
      : call_(std::move(call)), granted_(std::move(granted)) {}
  void Grant() override {
    if (std::shared_ptr<NativeCall> c = call_.lock()) c->Post([c, fn = granted_] { fn(); });
  }

 private:
  std::weak_ptr<NativeCall> call_;
  std::function<void()> granted_;
};

// Requests a stream may have unanswered (read from the client, answer not sent yet)
// before the gateway stops taking more from it (its HTTP/2 window is then held).
constexpr size_t kStreamWindow = 256;

// One forwarded call: a unary method, or a ModelStreamInfer stream. Owned by its
// NativeCall; everything runs on the call's loop. While it routes or waits for the
// replica it holds its NativeCall (keep_), so it lives until the upstream call or timer
// is done, even when the client has gone.
class ForwardCall final : public CallHandler, public UpstreamObserver {
 public:
  ForwardCall(NativeForwardCore* core, const MethodInfo* method)
      : core_(core), method_(method), streaming_(method->method == Method::kStreamInfer) {}

  ~ForwardCall() override {
    CancelUpstream();
    CancelParts();
    place_.StopWaiting(false);
    if (ticket_ && !place_.dep->load->limiter.Cancel(ticket_.get())) place_.holds_slot = true;  // granted, never told
    place_.ReleaseSlot();
    if (place_.dep) {
      Record(kCancelled, "the call ended unanswered");  // the client left
      place_.dep->load->in_flight.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  void OnStart(NativeCall* call) override {
    call_ = call;
    if (streaming_) core_->requests.fetch_add(1, std::memory_order_relaxed);
  }

  void OnMessage(NativeCall* call, std::string_view bytes) override {
    if (streaming_) return OnStreamRequest(bytes);
    if (++messages_ > 1) return call->Finish(kUnimplemented, "a unary method received a second request message");
    request_.assign(bytes);
  }

  void OnHalfClose(NativeCall* call) override {
    if (streaming_) {
      reads_done_ = true;
      Pump();
      return MaybeFinishStream();
    }
    if (messages_ == 0) return Finish(kInvalidArgument, "the call carried no request message");
    core_->requests.fetch_add(1, std::memory_order_relaxed);
    std::string_view chunks[] = {request_};
    auto target = ScanModelTarget(chunks, method_->fields);
    if (!target.ok()) return Finish(kInvalidArgument, target.status().message());
    place_.table = core_->router->Snapshot();
    auto it = place_.table->by_model.find(target->name);
    if (it == place_.table->by_model.end()) {
      // As `ferry serve`: an unknown model is not ready, rather than an error.
      if (method_->method == Method::kReady) {
        call->SendProto(inference::ModelReadyResponse());
        return Finish(kOk);
      }
      if (method_->method == Method::kStatistics && target->name.empty())
        return Finish(kUnimplemented,
                      "the gateway does not aggregate statistics; ask for one model (ModelStatisticsRequest.name)");
      return Finish(kNotFound, UnknownModel(target->name));
    }
    if (method_->method == Method::kStatistics) return GatherStatistics(*it->second);
    if (!Admit(it->second.get(), target->name)) return Finish(kResourceExhausted, OverLimit(*it->second));
    keep_ = call->shared_from_this();
    Route();
  }

  void OnClose(NativeCall*) override {
    // The stream is gone (answered, or the client reset it, its deadline passed, its
    // connection went): stop the replica's work and any wait. A queued call's ticket is
    // settled by ~ForwardCall (a slot granted meanwhile is given back there).
    cancelled_ = true;
    CancelUpstream();
    CancelParts();
    if (timer_) timer_->cancel();
    keep_.reset();  // may free this: the connection holds the call during this event
  }

  void OnDrained(NativeCall*) override {
    // The client takes its answers again: so may the replica's.
    up_held_ = false;
    if (session_ && stream_ >= 0) session_->HoldWindow(stream_, false);
  }

  // ---- UpstreamObserver

  void OnUpstreamMessage(std::string_view bytes, const GrpcMetadata& initial) override {
    if (!streaming_) {
      if (++responses_ == 1) response_.assign(bytes);
      return;
    }
    if (responses_++ == 0) initial_ = initial;
    sent_.clear();
    if (held_ > 0) Release();
    // Replicas answer in request order: this fills the oldest slot still waiting.
    for (Slot& slot : slots_)
      if (!slot.filled) {
        slot.filled = true;
        slot.bytes.assign(bytes);
        break;
      }
    SendAnswers();
  }

  void OnUpstreamClose(UpstreamResult r) override {
    stream_ = -1;
    session_.reset();
    while (held_ > 0) Release();
    trace_.EndAttempt(r.code == kOk ? std::string_view() : std::string_view(r.message));
    if (cancelled_) return;
    if (streaming_) return OnStreamUpstreamClose(std::move(r));
    if (RetryOnAnotherReplica(r)) return Send();
    for (const auto& [k, v] : r.initial)
      if (Forwardable(k)) call_->AddInitialMetadata(k, v);
    for (const auto& [k, v] : r.trailing)
      if (Forwardable(k)) call_->AddTrailingMetadata(k, v);
    call_->AddInitialMetadata("ferry-revision", revision_->name);
    revision_->load->latency.Record(std::chrono::duration<double>(SteadyClock::now() - routed_).count());
    if (r.code != kOk) {
      auto [code, message] = FromUpstream(r);
      return Finish(code, message);
    }
    if (responses_ != 1)
      return Finish(kInternal, ReplicaFailed(*place_.dep, *ep_, "a unary answer carried " + std::to_string(responses_) +
                                                              " messages"));
    place_.ReleaseSlot();  // answered: the next queued call may go while this one is written
    call_->SendMessage(response_);
    Finish(kOk);
  }

 private:
  // ---- ModelStatistics: every ready replica asked at once, their answers summed; not
  // admitted against max_in_flight nor counted in the deployment's request metrics (as
  // the other transport and the REST gateway).
  struct Part final : UpstreamObserver {
    ForwardCall* owner = nullptr;
    std::shared_ptr<ReplicaEndpoint> ep;
    std::shared_ptr<GrpcUpstreamSession> session;
    int32_t stream = -1;
    StatisticsAnswer answer;
    void OnUpstreamMessage(std::string_view bytes, const GrpcMetadata&) override { answer.bytes.assign(bytes); }
    void OnUpstreamClose(UpstreamResult r) override {
      stream = -1;
      session.reset();
      answer.code = r.code;
      answer.message = std::move(r.message);
      owner->OnPartDone();
    }
  };

  void GatherStatistics(const DeploymentRoute& dep) {
    for (const auto& r : dep.revisions)
      for (const auto& e : r.replicas)
        if (e->routable.load(std::memory_order_relaxed)) {
          auto part = std::make_unique<Part>();
          part->owner = this;
          part->ep = e;
          part->answer.ep = e.get();
          parts_.push_back(std::move(part));
        }
    if (parts_.empty()) return Finish(kUnavailable, "deployment '" + dep.name + "' has no ready replica");
    gather_deployment_ = dep.name;
    auto deadline = SteadyClock::now() + milliseconds(dep.request_timeout_ms);
    if (auto client = call_->deadline(); client && *client < deadline) deadline = *client;
    const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::max(deadline - SteadyClock::now(), SteadyClock::duration(1)));
    keep_ = call_->shared_from_this();
    parts_pending_ = parts_.size();
    for (auto& p : parts_) {
      p->session = core_->sessions.For(call_->loop(), p->ep->grpc_port);
      p->stream = p->session->Start(p.get(), method_->path, {}, timeout);
      if (p->stream < 0) {
        p->session.reset();
        p->answer.code = kUnavailable;
        p->answer.message = "cannot start an HTTP/2 stream";
        --parts_pending_;
        continue;
      }
      p->session->Send(p->stream, request_);
      p->session->HalfClose(p->stream);
    }
    if (parts_pending_ == 0) AnswerStatistics();
  }

  void OnPartDone() {
    if (--parts_pending_ == 0 && !cancelled_) AnswerStatistics();
  }

  void AnswerStatistics() {
    std::vector<StatisticsAnswer> answers;
    for (const auto& p : parts_) answers.push_back(p->answer);
    std::string out;
    const StatisticsSum sum = SumStatistics(gather_deployment_, answers, &out);
    if (sum.code != kOk) return Finish(sum.code, sum.message);
    call_->SendMessage(out);
    Finish(kOk);
  }

  void CancelParts() {
    for (auto& p : parts_)
      if (p->stream >= 0 && p->session) {
        p->session->Cancel(p->stream);
        p->stream = -1;
        p->session.reset();
      }
  }

  bool Admit(const DeploymentRoute* dep, const std::string& model) {
    if (core_->tracing.exporter) {
      trace_ = GatewayTrace(&core_->tracing, call_->Metadata("traceparent").value_or(std::string_view()));
      if (trace_.sampled()) model_ = model;
    }
    if (!AdmitInFlight(*dep)) return false;
    place_.dep = dep;
    // The client's deadline; a unary call's is capped by gateway.request_timeout (a
    // stream may rightly stay open longer than one request takes).
    if (!streaming_) {
      deadline_ = SteadyClock::now() + milliseconds(dep->request_timeout_ms);
      gateway_deadline_ = true;
    }
    if (auto client = call_->deadline(); client && *client <= deadline_) {
      deadline_ = *client;
      gateway_deadline_ = false;
    }
    return true;
  }

  void Route() {
    if (cancelled_ || ended_) return;
    std::shared_ptr<ReplicaEndpoint> ep;
    const RevisionRoute* rev = nullptr;
    std::string no_replica;
    const auto now = SteadyClock::now();
    switch (place_.Next(*core_->router, !ticket_, now >= deadline_, &ep, &rev, &no_replica)) {
      case CallPlace::Step::kQueue:
        return Queue();
      case CallPlace::Step::kPicked:
        ep_ = std::move(ep);
        revision_ = rev;
        routed_ = now;
        return Send();
      case CallPlace::Step::kNoReplica:
        return Fail(kUnavailable, std::move(no_replica));
      case CallPlace::Step::kWait:
        break;
    }
    Wait(std::min(now + kWaitPoll, deadline_), [this] { Route(); });
  }

  // Runs `then` on the loop at `at`, unless the call is cancelled first.
  void Wait(SteadyClock::time_point at, std::function<void()> then) {
    if (!timer_) timer_.emplace(*call_->loop());
    timer_->expires_at(at);
    timer_->async_wait([this, keep = keep_, then = std::move(then)](boost::system::error_code ec) {
      if (!ec && !cancelled_) then();
    });
  }

  void Queue() {
    auto ticket = std::make_shared<Ticket>(keep_, [this] { OnGranted(); });
    switch (place_.AskSlot(ticket)) {
      case ConcurrencyLimiter::Outcome::kAcquired:
        return Route();
      case ConcurrencyLimiter::Outcome::kQueueFull:
        return Fail(kResourceExhausted, QueueFullMessage(*place_.dep));
      case ConcurrencyLimiter::Outcome::kQueued:
        break;
    }
    ticket_ = std::move(ticket);
    queue_start_ = SteadyClock::now();
    const auto expiry = std::min(queue_start_ + milliseconds(place_.dep->queue_timeout_ms), deadline_);
    Wait(expiry, [this, expiry] {
      if (!ticket_ || !place_.dep->load->limiter.Cancel(ticket_.get())) return;  // granted: OnGranted is on its way
      ticket_.reset();
      if (place_.dep->metrics) place_.dep->metrics->rejected_queue_timeout->Increment();
      const auto waited = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - queue_start_);
      Fail(kResourceExhausted, QueueTimeoutMessage(*place_.dep, waited.count(), expiry >= deadline_));
    });
  }

  void OnGranted() {
    ticket_.reset();
    place_.holds_slot = true;
    if (place_.dep->metrics)
      place_.dep->metrics->queue_wait->Observe(std::chrono::duration<double>(SteadyClock::now() - queue_start_).count());
    if (cancelled_) return place_.ReleaseSlot();
    if (timer_) timer_->cancel();
    Route();
  }


  // The client's metadata for the replica; with tracing on, the gateway's traceparent
  // for this try instead of the client's.
  GrpcMetadata UpstreamMetadata() {
    GrpcMetadata metadata;
    for (const auto& [k, v] : call_->metadata())
      if (Forwardable(k) && !(trace_.on() && k == "traceparent")) metadata.emplace_back(k, v);
    if (trace_.on()) metadata.emplace_back("traceparent", trace_.StartAttempt(ep_->id));
    return metadata;
  }

  void Send() {
    if (cancelled_) return;
    if (streaming_) return OpenUpstream();
    session_ = core_->sessions.For(call_->loop(), ep_->grpc_port);
    responses_ = 0;
    const auto left = std::max(deadline_ - SteadyClock::now(), SteadyClock::duration(1));
    stream_ = session_->Start(this, method_->path, UpstreamMetadata(),
                              std::chrono::duration_cast<std::chrono::nanoseconds>(left));
    if (stream_ < 0) {
      session_.reset();
      return Finish(kInternal, ReplicaFailed(*place_.dep, *ep_, "cannot start an HTTP/2 stream"));
    }
    Hold();
    session_->Send(stream_, request_);
    session_->HalfClose(stream_);
  }

  // This call's requests at ep_, unanswered, count in its outstanding (the pick's load).
  void Hold() { ++held_; ep_->outstanding.fetch_add(1, std::memory_order_relaxed); }
  void Release() { --held_; ep_->outstanding.fetch_sub(1, std::memory_order_relaxed); }

  void CancelUpstream() {
    if (stream_ < 0 || !session_) return;
    while (held_ > 0) Release();
    session_->Cancel(stream_);
    stream_ = -1;
    session_.reset();
  }

  // UNAVAILABLE (refused, reset, the replica died) is retried once, on another replica
  // when there is one, as the other transport does.
  bool RetryOnAnotherReplica(const UpstreamResult& r, bool answered = false) {
    if (retried_ || answered || r.code != kUnavailable || cancelled_) return false;
    if (!PickRetry(*place_.dep, &ep_, &revision_, r.message)) return false;
    retried_ = true;
    core_->retries.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // What the client gets for a failed upstream call: the replica's own answers as they
  // are; the gateway's failures (unreachable after the retry, over
  // gateway.request_timeout) say which replica.
  std::pair<int, std::string> FromUpstream(const UpstreamResult& r) {
    if (r.code == kUnavailable) {
      CountUpstreamError(*ep_, /*timeout=*/false);
      core_->upstream_errors.fetch_add(1, std::memory_order_relaxed);
      return {r.code, ReplicaFailed(*place_.dep, *ep_, r.message)};
    }
    if (r.code == kDeadlineExceeded && gateway_deadline_ && SteadyClock::now() >= deadline_) {
      CountUpstreamError(*ep_, /*timeout=*/true);
      core_->upstream_errors.fetch_add(1, std::memory_order_relaxed);
      return {r.code, ReplicaTimedOut(*place_.dep, *ep_)};
    }
    return {r.code, r.message};
  }

  // ---- ModelStreamInfer: one upstream stream, pinned to its replica; answers in
  // request order; a request the gateway cannot route gets an in-band error.

  void OnStreamRequest(std::string_view bytes) {
    if (ended_) return;  // a request after the stream's end: dropped
    std::string_view chunks[] = {bytes};
    auto target = ScanModelTarget(chunks, kInferRequestFields);
    if (!target.ok()) return AnswerLocally(target.status().message(), "");
    // Looked up in the newest table: a model that arrived after the stream began counts.
    auto table = core_->router->Snapshot();
    auto it = table->by_model.find(target->name);
    if (it == table->by_model.end()) return AnswerLocally(UnknownModel(target->name), target->id);
    if (!place_.dep) {
      if (!Admit(it->second.get(), target->name)) return EndStream(kResourceExhausted, OverLimit(*it->second));
      place_.table = std::move(table);
      keep_ = call_->shared_from_this();
      Enqueue(bytes);
      return Route();
    }
    if (it->second->name != place_.dep->name)
      return AnswerLocally("model '" + target->name + "' is served by deployment '" + it->second->name +
                               "', and this stream goes to deployment '" + place_.dep->name +
                               "' (chosen by its first request): send it on a stream of its own",
                           target->id);
    Enqueue(bytes);
  }

  // An in-band error for one request, as `ferry serve` answers one it cannot serve.
  void AnswerLocally(const std::string& message, const std::string& id) {
    inference::ModelStreamInferResponse r;
    r.set_error_message(message);
    r.mutable_infer_response()->set_id(id);
    slots_.push_back({true, r.SerializeAsString()});
    SendAnswers();
  }

  void Enqueue(std::string_view request) {
    slots_.push_back({});
    to_upstream_.emplace_back(request);
    if (slots_.size() >= kStreamWindow) call_->HoldWindow(true);
    Pump();
  }

  void OpenUpstream() {
    session_ = core_->sessions.For(call_->loop(), ep_->grpc_port);
    responses_ = 0;
    up_half_closed_ = false;
    std::optional<std::chrono::nanoseconds> timeout;
    if (deadline_ != SteadyClock::time_point::max())
      timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::max(deadline_ - SteadyClock::now(), SteadyClock::duration(1)));
    stream_ = session_->Start(this, method_->path, UpstreamMetadata(), timeout);
    if (stream_ < 0) {
      session_.reset();
      return EndStream(kInternal, ReplicaFailed(*place_.dep, *ep_, "cannot start an HTTP/2 stream"));
    }
    if (up_held_) session_->HoldWindow(stream_, true);
    Pump();
  }

  // Sends the requests held for the replica; half-closes once the client has.
  void Pump() {
    if (stream_ < 0 || cancelled_) return;
    while (!to_upstream_.empty()) {
      if (responses_ == 0 && !retried_) sent_.push_back(to_upstream_.front());
      Hold();
      session_->Send(stream_, to_upstream_.front());
      to_upstream_.pop_front();
    }
    if (reads_done_ && !up_half_closed_) {
      up_half_closed_ = true;
      session_->HalfClose(stream_);
    }
  }

  void OnStreamUpstreamClose(UpstreamResult r) {
    if (RetryOnAnotherReplica(r, responses_ > 0)) {
      // The requests the failed replica took, none answered, go again first.
      for (auto it = sent_.rbegin(); it != sent_.rend(); ++it) to_upstream_.push_front(std::move(*it));
      sent_.clear();
      return OpenUpstream();
    }
    for (const auto& [k, v] : r.trailing)
      if (Forwardable(k)) call_->AddTrailingMetadata(k, v);
    if (r.code == kOk) return EndStream(kOk, {});
    auto [code, message] = FromUpstream(r);
    EndStream(code, message);
  }

  // The stream's outcome is known: what is answered still goes out, then the status.
  void EndStream(int code, std::string message) {
    if (ended_) return;
    ended_ = true;
    end_code_ = code;
    end_message_ = std::move(message);
    to_upstream_.clear();
    if (timer_) timer_->cancel();
    CancelUpstream();
    // Requests the replica never answered get no answer; the ones answered here still do.
    std::erase_if(slots_, [](const Slot& x) { return !x.filled; });
    SendAnswers();
  }

  // Sends the answers now due (the filled slots at the front) to the client.
  void SendAnswers() {
    while (!slots_.empty() && slots_.front().filled) {
      if (!initial_sent_) {
        initial_sent_ = true;
        for (const auto& [k, v] : initial_)
          if (Forwardable(k)) call_->AddInitialMetadata(k, v);
        if (revision_) call_->AddInitialMetadata("ferry-revision", revision_->name);
      }
      call_->SendMessage(slots_.front().bytes);
      slots_.pop_front();
    }
    if (slots_.size() < kStreamWindow) call_->HoldWindow(false);
    HoldUpstreamIfBacklogged();
    MaybeFinishStream();
  }

  // While the client does not take its answers, neither does the gateway take the
  // replica's past one upstream window: they wait in the replica (whose own bounds then
  // hold the requests sent to it), not here. Requests still go up meanwhile. OnDrained
  // releases it.
  void HoldUpstreamIfBacklogged() {
    if (up_held_ || !session_ || stream_ < 0 || !call_->Backlogged()) return;
    up_held_ = true;
    session_->HoldWindow(stream_, true);
    call_->NotifyWhenDrained();
  }

  void MaybeFinishStream() {
    // Without a route (every request so far named an unknown model) the stream ends
    // when the client's requests do.
    const bool over = ended_ || (reads_done_ && !place_.dep);
    if (finishing_ || !over || !slots_.empty()) return;
    finishing_ = true;
    if (revision_) call_->AddTrailingMetadata("ferry-revision", revision_->name);
    Finish(end_code_, end_message_);
  }

  // Answers the call: a unary call's status, or a stream's end.
  void Fail(int code, std::string message) { streaming_ ? EndStream(code, std::move(message)) : Finish(code, message); }

  void Record(int code, std::string_view message = {}) {
    if (recorded_ || !place_.dep) return;
    recorded_ = true;
    if (trace_.sampled())
      trace_.Finish({"grpc", place_.dep->name, revision_ ? std::string_view(revision_->name) : std::string_view(), model_,
                     "rpc.grpc.status_code", static_cast<int64_t>(code), code != kOk, message});
    RecordAnswer(*place_.dep, code, admitted_);
  }

  void Finish(int code, std::string_view message = {}) {
    place_.ReleaseSlot();
    Record(code, message);
    call_->Finish(code, message);
    keep_.reset();  // may free this
  }

  NativeForwardCore* const core_;
  const MethodInfo* const method_;
  const bool streaming_;               // ModelStreamInfer
  NativeCall* call_ = nullptr;         // set at the call's start
  std::shared_ptr<NativeCall> keep_;   // while routing, waiting or forwarding
  const SteadyClock::time_point admitted_ = SteadyClock::now();
  int messages_ = 0;
  std::string request_, response_;
  bool cancelled_ = false;
  CallPlace place_;  // its deployment: table, cold-start wait, limiter slot

  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
  bool gateway_deadline_ = false;
  std::optional<asio::steady_timer> timer_;
  std::shared_ptr<Ticket> ticket_;
  SteadyClock::time_point queue_start_;

  std::shared_ptr<ReplicaEndpoint> ep_;
  const RevisionRoute* revision_ = nullptr;
  SteadyClock::time_point routed_;
  bool retried_ = false;
  std::shared_ptr<GrpcUpstreamSession> session_;
  int32_t stream_ = -1;
  int responses_ = 0;
  bool recorded_ = false;
  GatewayTrace trace_;
  std::string model_;
  int held_ = 0;  // this call's share of ep_->outstanding
  std::vector<std::unique_ptr<Part>> parts_;  // ModelStatistics only
  size_t parts_pending_ = 0;
  std::string gather_deployment_;

  // ModelStreamInfer only.
  struct Slot {  // one client request, in order: its answer, once known
    bool filled = false;
    std::string bytes;
  };
  std::deque<Slot> slots_;               // answers not yet sent, in request order
  std::deque<std::string> to_upstream_;  // requests for the replica, not yet sent to it
  std::vector<std::string> sent_;        // sent to this upstream before any answer: replayed on a retry
  GrpcMetadata initial_;                 // the replica's response headers
  bool reads_done_ = false, up_half_closed_ = false, ended_ = false, finishing_ = false, initial_sent_ = false;
  bool up_held_ = false;  // the upstream stream's window is held (HoldUpstreamIfBacklogged)
  int end_code_ = 0;
  std::string end_message_;
};

// A method the gateway answers itself, on the call's loop at half-close.
class LocalCall final : public CallHandler {
 public:
  LocalCall(NativeForwardCore* core, std::string_view path) : core_(core), path_(path) {}

  void OnMessage(NativeCall* call, std::string_view bytes) override {
    if (++messages_ > 1) return call->Finish(kUnimplemented, "a unary method received a second request message");
    request_.assign(bytes);
  }
  void OnHalfClose(NativeCall* call) override {
    if (messages_ == 0) return call->Finish(kInvalidArgument, "the call carried no request message");
    ::grpc::Slice slice(request_);
    ::grpc::ByteBuffer in(&slice, 1), out;
    const ::grpc::Status status = core_->local->Answer(path_, in, &out);
    if (!status.ok()) return call->Finish(static_cast<int>(status.error_code()), status.error_message());
    std::vector<::grpc::Slice> slices;
    std::string bytes;
    if (out.Dump(&slices).ok())
      for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    call->SendMessage(bytes);
    call->Finish(kOk);
  }

 private:
  NativeForwardCore* const core_;
  const std::string path_;
  int messages_ = 0;
  std::string request_;
};

}  // namespace

std::unique_ptr<CallHandler> NewNativeForward(NativeForwardCore* core, const MethodInfo* method) {
  return std::make_unique<ForwardCall>(core, method);
}

std::unique_ptr<CallHandler> NewNativeLocal(NativeForwardCore* core, std::string_view path) {
  return std::make_unique<LocalCall>(core, path);
}

}  // namespace ferry::engine::grpc_forward
