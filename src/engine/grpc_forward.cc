#include "engine/grpc_forward.h"

#include <grpcpp/alarm.h>
#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

#include "core/log.h"
#include "engine/engine_metrics.h"
#include "engine/grpc_forward_policy.h"
#include "engine/grpc_statistics_gather.h"
#include "engine/grpc_wire.h"
#include "protocol/grpc/grpc_service.pb.h"

namespace ferry::engine::grpc_forward {
namespace g = ::grpc;
using Clock = std::chrono::system_clock;  // gRPC deadlines are system_clock time points
using std::chrono::milliseconds;

namespace {

// Requests a stream may have unanswered (read from the client, response not written
// yet) before the gateway stops reading more: `ferry serve`'s own per-stream window.
constexpr size_t kStreamWindow = 256;
// A request without a ready replica looks again this often (as the REST gateway: a cold
// start takes ~0.1-1 s, and polling needs no wake-up plumbing from the supervisor).
constexpr milliseconds kWaitPoll{10};

bool Forwardable(g::string_ref key) { return grpc_forward::Forwardable(std::string_view(key.data(), key.size())); }

std::string Str(g::string_ref s) { return std::string(s.data(), s.size()); }

g::ByteBuffer Serialize(const google::protobuf::MessageLite& message) {
  const std::string bytes = message.SerializeAsString();
  g::Slice slice(bytes);
  return g::ByteBuffer(&slice, 1);
}

Result<ModelTarget> Scan(const g::ByteBuffer& buffer, const ModelTargetFields& fields) {
  // One slice is the common case (a message that arrived whole and uncompressed).
  g::Slice one;
  if (buffer.TrySingleSlice(&one).ok()) {
    std::string_view view[] = {{reinterpret_cast<const char*>(one.begin()), one.size()}};
    return ScanModelTarget(view, fields);
  }
  std::vector<g::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return Internal("cannot read the request message");
  std::vector<std::string_view> views;
  views.reserve(slices.size());
  for (const auto& s : slices) views.emplace_back(reinterpret_cast<const char*>(s.begin()), s.size());
  return ScanModelTarget(views, fields);
}

// A call's place in its deployment's queue (ConcurrencyLimiter). Its alarm fires on the
// call's queue at the queue timeout, or at once when the limiter grants a slot (from
// another thread) or the client leaves: Grant() and the call's thread meet under mu.
class QueueTicket final : public ConcurrencyLimiter::Waiter {
 public:
  void Grant() override {
    std::lock_guard lock(mu_);
    granted_ = true;
    if (armed_) alarm_.Cancel();
  }
  // Once, on the call's thread, right after the limiter queued it.
  void Arm(g::CompletionQueue* cq, Clock::time_point expiry, void* tag) {
    std::lock_guard lock(mu_);
    armed_ = true;
    alarm_.Set(cq, granted_ ? Clock::now() : expiry, tag);
  }
  void Wake() {
    std::lock_guard lock(mu_);
    if (armed_) alarm_.Cancel();
  }

 private:
  std::mutex mu_;
  bool granted_ = false, armed_ = false;  // guarded by mu_
  g::Alarm alarm_;
};

// One call accepted by the generic service, and its upstream call(s). Every event comes
// back on the call's completion queue and so runs on that queue's thread: no locks.
// The call frees itself when no operation of it is pending any more.
class Call final : public TagHandler {
 public:
  Call(ForwardCore* core, g::ServerCompletionQueue* cq) : core_(core), cq_(cq) {
    for (int i = 0; i < kOps; ++i) tags_[i] = {this, i};
    core_->calls.fetch_add(1, std::memory_order_relaxed);
    ctx_.AsyncNotifyWhenDone(Arm(kDone));
    core_->generic.RequestCall(&ctx_, &stream_, cq_, cq_, Arm(kAccepted));
  }

  ~Call() override {
    place_.StopWaiting(false);
    place_.ReleaseSlot();
    if (ep_) ep_->outstanding.fetch_sub(held_, std::memory_order_relaxed);
    if (place_.dep) {
      Record(g::StatusCode::CANCELLED, "the call ended unanswered");  // the client left
      place_.dep->load->in_flight.fetch_sub(1, std::memory_order_relaxed);
    }
    core_->calls.fetch_sub(1, std::memory_order_release);
  }

  void OnEvent(int op, bool ok) override {
    --pending_;
    switch (op) {
      case kAccepted:
        if (!ok) {  // shutting down: the call never started, so its done event never comes
          delete this;
          return;
        }
        OnAccepted();
        break;
      case kDone:
        OnDone();
        break;
      case kRead:
        stream_state_ ? OnStreamRead(ok) : OnUnaryRead(ok);
        break;
      case kAlarm:
        alarm_.reset();
        if (ok && !cancelled_) Route();
        break;
      case kQueue:
        OnQueueAlarm();
        break;
      case kWrite:
        OnClientWrite(ok);
        break;
      case kFinish:
        break;
      case kUpStart:
        OnUpStart(ok);
        break;
      case kUpRead:
        OnUpRead(ok);
        break;
      case kUpWrite:
        stream_state_->up_writing = false;
        if (ok) PumpUpstream();
        MaybeUpstreamEnded();
        break;
      case kUpWritesDone:
        stream_state_->up_writes_done_pending = false;
        MaybeUpstreamEnded();
        break;
      case kUpFinish:
        stream_state_ ? OnStreamUpFinish() : OnUnaryUpFinish();
        break;
      case kGathered:
        OnGathered();
        break;
    }
    if (pending_ == 0) delete this;
  }

 private:
  // kGathered is not a gRPC operation: the statistics gather's answer, which holds the
  // call (pending) until it comes.
  enum Op { kAccepted, kDone, kRead, kAlarm, kQueue, kWrite, kFinish, kUpStart, kUpRead, kUpWrite, kUpWritesDone,
            kUpFinish, kGathered, kOps };

  // What a ModelStreamInfer stream holds besides the common state.
  struct Slot {  // one client request, in order: its answer, once known
    bool filled = false;
    g::ByteBuffer bytes;
  };
  struct StreamState {
    std::deque<Slot> slots;               // answers not yet due to be written, in request order
    std::deque<g::ByteBuffer> to_client;  // answers due, in order
    std::deque<g::ByteBuffer> to_upstream;  // requests for the replica, not yet written to it
    std::vector<g::ByteBuffer> sent;  // written to this upstream before any answer: replayed on a retry
    g::ByteBuffer client_out, up_in, up_out;  // the operations in progress
    std::unique_ptr<g::GenericClientAsyncReaderWriter> up;
    int unanswered = 0;      // written upstream, answer not read yet (held in ep_->outstanding)
    uint64_t responses = 0;  // read from the current upstream
    bool reading = false, reads_done = false, writing = false, finishing = false, initial_sent = false;
    bool up_open = false, up_reading = false, up_read_done = false, up_writing = false;
    bool up_writes_done = false, up_writes_done_pending = false, up_finished = false;
    bool ended = false;  // the stream's status is final_status; nothing more goes upstream
    g::Status final_status;
  };

  void* Arm(Op op) {
    ++pending_;
    return &tags_[op];
  }

  void OnAccepted() {
    AcceptOn(core_, cq_);
    method_ = FindMethod(ctx_.method());
    if (!method_) {
      if (core_->local && core_->local->Handles(ctx_.method())) {
        local_ = true;
        stream_.Read(&in_, Arm(kRead));
        return;
      }
      return Finish(g::Status(g::StatusCode::UNIMPLEMENTED, "unknown method '" + ctx_.method() + "'"));
    }
    core_->requests.fetch_add(1, std::memory_order_relaxed);
    if (method_->method == Method::kStreamInfer) {
      stream_state_ = std::make_unique<StreamState>();
      return ReadMore();
    }
    stream_.Read(&in_, Arm(kRead));
  }

  void OnDone() {
    if (!ctx_.IsCancelled()) return;
    // The client cancelled, its deadline passed, or the gateway is stopping: end the
    // upstream call and any wait; the pending operations then come back and free the call.
    cancelled_ = true;
    if (uctx_) uctx_->TryCancel();
    if (alarm_) alarm_->Cancel();
    if (ticket_) ticket_->Wake();
    if (gather_) gather_->Cancel();
  }

  // ---- routing, shared by unary calls and streams

  // Admission against max_in_flight; the call then counts in the deployment's load.
  bool Admit(const DeploymentRoute* dep, const std::string& model) {
    if (core_->tracing.exporter) {
      auto tp = ctx_.client_metadata().find("traceparent");
      trace_ = GatewayTrace(&core_->tracing, tp == ctx_.client_metadata().end()
                                                  ? std::string_view()
                                                  : std::string_view(tp->second.data(), tp->second.size()));
      if (trace_.sampled()) model_ = model;
    }
    if (!AdmitInFlight(*dep)) return false;
    place_.dep = dep;
    // The client's deadline; a unary call's is capped by gateway.request_timeout (a
    // stream may rightly stay open longer than one request takes).
    deadline_ = ctx_.deadline();
    if (!stream_state_) {
      const auto cap = Clock::now() + milliseconds(dep->request_timeout_ms);
      if (cap < deadline_) {
        deadline_ = cap;
        gateway_deadline_ = true;
      }
    }
    return true;
  }

  static g::Status OverLimitStatus(const DeploymentRoute& d) {
    return g::Status(g::StatusCode::RESOURCE_EXHAUSTED, OverLimit(d));
  }

  // Picks a replica for the held request, or waits for one to become ready.
  void Route() {
    if (cancelled_ || (stream_state_ && stream_state_->ended)) return;
    std::shared_ptr<ReplicaEndpoint> ep;
    const RevisionRoute* rev = nullptr;
    std::string no_replica;
    switch (place_.Next(*core_->router, !ticket_, Clock::now() >= deadline_, &ep, &rev, &no_replica)) {
      case CallPlace::Step::kQueue:
        return Queue();
      case CallPlace::Step::kPicked:
        ep_ = std::move(ep);
        revision_ = rev;
        routed_ = std::chrono::steady_clock::now();
        return stream_state_ ? OpenUpstream() : SendUnary();
      case CallPlace::Step::kNoReplica:
        return Fail(g::Status(g::StatusCode::UNAVAILABLE, no_replica));
      case CallPlace::Step::kWait:
        break;
    }
    alarm_ = std::make_unique<g::Alarm>();
    alarm_->Set(cq_, std::min(Clock::now() + kWaitPoll, deadline_), Arm(kAlarm));
  }

  void Queue() {
    auto ticket = std::make_shared<QueueTicket>();
    switch (place_.AskSlot(ticket)) {
      case ConcurrencyLimiter::Outcome::kAcquired:
        return Route();
      case ConcurrencyLimiter::Outcome::kQueueFull:
        return Fail(g::Status(g::StatusCode::RESOURCE_EXHAUSTED, QueueFullMessage(*place_.dep)));
      case ConcurrencyLimiter::Outcome::kQueued:
        break;
    }
    ticket_ = std::move(ticket);
    queue_start_ = std::chrono::steady_clock::now();
    queue_expiry_ = std::min(Clock::now() + milliseconds(place_.dep->queue_timeout_ms), deadline_);
    ticket_->Arm(cq_, queue_expiry_, Arm(kQueue));
  }

  // The ticket's alarm: a slot was granted, the queue timeout passed, or the client left.
  void OnQueueAlarm() {
    const bool removed = place_.dep->load->limiter.Cancel(ticket_.get());
    ticket_.reset();
    if (!removed) {  // granted: the slot is ours
      place_.holds_slot = true;
      if (place_.dep->metrics)
        place_.dep->metrics->queue_wait->Observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - queue_start_).count());
      if (cancelled_) return place_.ReleaseSlot();
      return Route();
    }
    if (cancelled_) return;  // the client left: nothing to answer
    if (place_.dep->metrics) place_.dep->metrics->rejected_queue_timeout->Increment();
    const auto waited = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - queue_start_);
    Fail(g::Status(g::StatusCode::RESOURCE_EXHAUSTED,
                   QueueTimeoutMessage(*place_.dep, waited.count(), queue_expiry_ >= deadline_)));
  }


  // The upstream call's context: the deadline, and the client's metadata; with tracing
  // on, the gateway's traceparent for this try instead of the client's.
  std::unique_ptr<g::ClientContext> NewUpstreamContext() {
    auto c = std::make_unique<g::ClientContext>();
    if (deadline_ != Clock::time_point::max()) c->set_deadline(deadline_);
    for (const auto& [k, v] : ctx_.client_metadata())
      if (Forwardable(k) && !(trace_.on() && k == "traceparent")) c->AddMetadata(Str(k), Str(v));
    if (trace_.on()) c->AddMetadata("traceparent", trace_.StartAttempt(ep_->id));
    return c;
  }

  // An upstream failure that is the gateway's to retry: UNAVAILABLE (refused, reset, the
  // replica died) before any answer, once. Picks the replica for the second try.
  bool RetryOnAnotherReplica(const g::Status& status, bool answered) {
    if (retried_ || answered || status.error_code() != g::StatusCode::UNAVAILABLE || cancelled_) return false;
    if (!PickRetry(*place_.dep, &ep_, &revision_, status.error_message())) return false;
    retried_ = true;
    core_->retries.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // What the client gets for a failed upstream call: the replica's own answers as they
  // are; the gateway's failures (the replica unreachable after the retry, or over
  // gateway.request_timeout) say which replica.
  g::Status FromUpstream(const g::Status& s) {
    if (s.error_code() == g::StatusCode::UNAVAILABLE) {
      CountUpstreamError(*ep_, /*timeout=*/false);
      core_->upstream_errors.fetch_add(1, std::memory_order_relaxed);
      return g::Status(s.error_code(), ReplicaFailed(*place_.dep, *ep_, s.error_message()), s.error_details());
    }
    if (s.error_code() == g::StatusCode::DEADLINE_EXCEEDED && gateway_deadline_ && Clock::now() >= deadline_) {
      CountUpstreamError(*ep_, /*timeout=*/true);
      core_->upstream_errors.fetch_add(1, std::memory_order_relaxed);
      return g::Status(s.error_code(), ReplicaTimedOut(*place_.dep, *ep_));
    }
    return s;
  }

  void Hold() {
    ep_->outstanding.fetch_add(1, std::memory_order_relaxed);
    ++held_;
  }
  void Release() {
    ep_->outstanding.fetch_sub(1, std::memory_order_relaxed);
    --held_;
  }

  void Record(g::StatusCode code, std::string_view message = {}) {
    if (recorded_ || !place_.dep) return;
    recorded_ = true;
    if (trace_.sampled())
      trace_.Finish({"grpc", place_.dep->name, revision_ ? std::string_view(revision_->name) : std::string_view(), model_,
                     "rpc.grpc.status_code", static_cast<int64_t>(code), code != g::StatusCode::OK, message});
    RecordAnswer(*place_.dep, static_cast<int>(code), admitted_);
  }

  // Answers the call: a unary call's status, or a stream's end.
  void Fail(const g::Status& s) { stream_state_ ? EndStream(s) : Finish(s); }

  void Finish(const g::Status& s) {
    place_.ReleaseSlot();  // the next queued request may go while this answer is written
    Record(s.error_code(), s.error_message());
    stream_.Finish(s, Arm(kFinish));
  }

  // ---- unary calls: ModelInfer, ModelMetadata, ModelReady, ModelConfig, ModelStatistics

  void OnUnaryRead(bool ok) {
    if (!ok) return Finish(g::Status(g::StatusCode::INVALID_ARGUMENT, "the call carried no request message"));
    if (local_) {
      const g::Status status = core_->local->Answer(ctx_.method(), in_, &out_);
      if (!status.ok()) return Finish(status);
      stream_.WriteAndFinish(out_, g::WriteOptions(), g::Status::OK, Arm(kFinish));
      return;
    }
    auto target = Scan(in_, method_->fields);
    if (!target.ok()) return Finish(g::Status(g::StatusCode::INVALID_ARGUMENT, target.status().message()));
    place_.table = core_->router->Snapshot();
    auto it = place_.table->by_model.find(target->name);
    if (it == place_.table->by_model.end()) {
      // As `ferry serve`: an unknown model is not ready, rather than an error.
      if (method_->method == Method::kReady) {
        inference::ModelReadyResponse not_ready;
        out_ = Serialize(not_ready);
        stream_.WriteAndFinish(out_, g::WriteOptions(), g::Status::OK, Arm(kFinish));
        return;
      }
      if (method_->method == Method::kStatistics && target->name.empty())
        return Finish(g::Status(g::StatusCode::UNIMPLEMENTED,
                                "the gateway does not aggregate statistics; ask for one model "
                                "(ModelStatisticsRequest.name)"));
      return Finish(g::Status(g::StatusCode::NOT_FOUND, UnknownModel(target->name)));
    }
    if (method_->method == Method::kStatistics) return GatherStatistics(*it->second);
    if (!Admit(it->second.get(), target->name)) return Finish(OverLimitStatus(*it->second));
    Route();
  }

  // ModelStatistics for one model: every ready replica of its deployment is asked and
  // the answers summed. Not admitted against max_in_flight (nor counted in the
  // deployment's request metrics), as the REST gateway's GET .../stats.
  void GatherStatistics(const DeploymentRoute& dep) {
    std::vector<std::shared_ptr<ReplicaEndpoint>> replicas;
    for (const auto& r : dep.revisions)
      for (const auto& e : r.replicas)
        if (e->routable.load(std::memory_order_relaxed)) replicas.push_back(e);
    if (replicas.empty())
      return Finish(g::Status(g::StatusCode::UNAVAILABLE, "deployment '" + dep.name + "' has no ready replica"));
    auto deadline = ctx_.deadline();
    const auto cap = Clock::now() + milliseconds(dep.request_timeout_ms);
    if (cap < deadline) deadline = cap;
    Arm(kGathered);
    gather_ = StatisticsGather::Start(*core_, cq_, ctx_.method(), in_, std::move(replicas), deadline, dep.name,
                                      [this](g::Status status, g::ByteBuffer answer) {
                                        gather_ = nullptr;
                                        ustatus_ = std::move(status);
                                        out_ = std::move(answer);
                                        OnEvent(kGathered, true);
                                      });
  }

  void OnGathered() {
    if (cancelled_) return;
    if (!ustatus_.ok()) return Finish(ustatus_);
    stream_.WriteAndFinish(out_, g::WriteOptions(), g::Status::OK, Arm(kFinish));
  }

  void SendUnary() {
    if (cancelled_) return;
    uctx_ = NewUpstreamContext();
    Hold();
    g::GenericStub stub(ChannelTo(*core_, *ep_));
    unary_ = stub.PrepareUnaryCall(uctx_.get(), ctx_.method(), in_, cq_);
    unary_->StartCall();
    unary_->Finish(&out_, &ustatus_, Arm(kUpFinish));
  }

  void OnUnaryUpFinish() {
    Release();
    trace_.EndAttempt(ustatus_.error_message());
    if (cancelled_) return;
    if (RetryOnAnotherReplica(ustatus_, false)) {
      unary_.reset();
      uctx_.reset();
      return SendUnary();
    }
    for (const auto& [k, v] : uctx_->GetServerInitialMetadata())
      if (Forwardable(k)) ctx_.AddInitialMetadata(Str(k), Str(v));
    for (const auto& [k, v] : uctx_->GetServerTrailingMetadata())
      if (Forwardable(k)) ctx_.AddTrailingMetadata(Str(k), Str(v));
    // Which revision answered (as the REST gateway's Ferry-Revision header).
    ctx_.AddInitialMetadata("ferry-revision", revision_->name);
    // The replica answered: its latency counts for the latency objective (unary calls;
    // a stream's messages have no single latency).
    revision_->load->latency.Record(std::chrono::duration<double>(std::chrono::steady_clock::now() - routed_).count());
    if (!ustatus_.ok()) return Finish(FromUpstream(ustatus_));
    place_.ReleaseSlot();  // answered: the next queued call may go while this one is written
    Record(g::StatusCode::OK);
    stream_.WriteAndFinish(out_, g::WriteOptions(), g::Status::OK, Arm(kFinish));
  }

  // ---- ModelStreamInfer: one upstream stream, answers in request order

  void ReadMore() {
    StreamState& s = *stream_state_;
    if (s.reading || s.reads_done || s.ended || s.slots.size() + s.to_client.size() >= kStreamWindow) return;
    s.reading = true;
    stream_.Read(&in_, Arm(kRead));
  }

  void OnStreamRead(bool ok) {
    StreamState& s = *stream_state_;
    s.reading = false;
    if (!ok) {  // the client finished sending (or went away)
      s.reads_done = true;
      PumpUpstream();
      return MaybeFinishStream();
    }
    if (s.ended) return;  // a request that came after the stream's end: dropped
    g::ByteBuffer request;
    request.Swap(&in_);
    auto target = Scan(request, kInferRequestFields);
    if (!target.ok()) {
      AnswerLocally(target.status().message(), "");
    } else {
      // Looked up in the newest table: a model that arrived after the stream began counts.
      auto table = core_->router->Snapshot();
      auto it = table->by_model.find(target->name);
      if (it == table->by_model.end()) {
        AnswerLocally(UnknownModel(target->name), target->id);
      } else if (!place_.dep) {
        if (!Admit(it->second.get(), target->name)) return EndStream(OverLimitStatus(*it->second));
        place_.table = std::move(table);
        Forward(std::move(request));
        Route();
      } else if (it->second->name != place_.dep->name) {
        AnswerLocally("model '" + target->name + "' is served by deployment '" + it->second->name +
                          "', and this stream goes to deployment '" + place_.dep->name +
                          "' (chosen by its first request): send it on a stream of its own",
                      target->id);
      } else {
        Forward(std::move(request));
      }
    }
    ReadMore();
  }

  // An in-band error for one request, as `ferry serve` answers one it cannot serve.
  void AnswerLocally(const std::string& message, const std::string& id) {
    inference::ModelStreamInferResponse r;
    r.set_error_message(message);
    r.mutable_infer_response()->set_id(id);
    stream_state_->slots.push_back({true, Serialize(r)});
    Flush();
  }

  void Forward(g::ByteBuffer request) {
    stream_state_->slots.push_back({});
    stream_state_->to_upstream.push_back(std::move(request));
    PumpUpstream();
  }

  void OpenUpstream() {
    if (cancelled_) return;
    StreamState& s = *stream_state_;
    uctx_ = NewUpstreamContext();
    g::GenericStub stub(ChannelTo(*core_, *ep_));
    s.up = stub.PrepareCall(uctx_.get(), ctx_.method(), cq_);
    s.responses = 0;
    s.up_open = s.up_reading = s.up_read_done = s.up_writing = false;
    s.up_writes_done = s.up_writes_done_pending = s.up_finished = false;
    s.up->StartCall(Arm(kUpStart));
  }

  void OnUpStart(bool ok) {
    StreamState& s = *stream_state_;
    s.up_open = ok;
    PumpUpstream();
    // Read even when the start failed: that read fails at once, and Finish says why.
    UpRead();
  }

  // Writes the next request upstream, one at a time; then half-closes once the client has.
  void PumpUpstream() {
    StreamState& s = *stream_state_;
    if (!s.up_open || s.up_writing || s.up_writes_done || cancelled_) return;
    if (!s.to_upstream.empty()) {
      s.up_out = std::move(s.to_upstream.front());
      s.to_upstream.pop_front();
      if (s.responses == 0 && !retried_) s.sent.push_back(s.up_out);  // shares the slices
      ++s.unanswered;
      Hold();
      s.up_writing = true;
      s.up->Write(s.up_out, Arm(kUpWrite));
    } else if (s.reads_done) {
      s.up_writes_done = s.up_writes_done_pending = true;
      s.up->WritesDone(Arm(kUpWritesDone));
    }
  }

  void UpRead() {
    StreamState& s = *stream_state_;
    // Paused while the client is slower than the replica; OnClientWrite resumes it.
    if (s.up_reading || s.up_read_done || s.to_client.size() >= kStreamWindow) return;
    s.up_reading = true;
    s.up->Read(&s.up_in, Arm(kUpRead));
  }

  void OnUpRead(bool ok) {
    StreamState& s = *stream_state_;
    s.up_reading = false;
    if (!ok) {  // the replica ended the stream (or it broke): Finish has the status
      s.up_read_done = true;
      s.up->Finish(&ustatus_, Arm(kUpFinish));
      return;
    }
    ++s.responses;
    s.sent.clear();
    if (s.unanswered > 0) {
      --s.unanswered;
      Release();
    }
    g::ByteBuffer answer;
    answer.Swap(&s.up_in);
    // Replicas answer in request order: this fills the oldest slot still waiting.
    auto it = std::find_if(s.slots.begin(), s.slots.end(), [](const Slot& x) { return !x.filled; });
    if (it != s.slots.end()) {
      it->filled = true;
      it->bytes = std::move(answer);
    } else {
      s.to_client.push_back(std::move(answer));
    }
    Flush();
    UpRead();
  }

  void OnStreamUpFinish() {
    stream_state_->up_finished = true;
    trace_.EndAttempt(ustatus_.error_message());
    MaybeUpstreamEnded();
  }

  // Once the upstream call is over (status received, no write of it pending): retry it,
  // or end the client's stream with its status.
  void MaybeUpstreamEnded() {
    StreamState& s = *stream_state_;
    if (!s.up_finished || s.up_writing || s.up_writes_done_pending) return;
    s.up_finished = false;  // handled once
    s.up_open = false;
    while (s.unanswered > 0) {
      --s.unanswered;
      Release();
    }
    if (cancelled_) return;
    if (RetryOnAnotherReplica(ustatus_, s.responses > 0)) {
      for (auto it = s.sent.rbegin(); it != s.sent.rend(); ++it) s.to_upstream.push_front(std::move(*it));
      s.sent.clear();
      s.up.reset();
      uctx_.reset();
      return OpenUpstream();
    }
    for (const auto& [k, v] : uctx_->GetServerTrailingMetadata())
      if (Forwardable(k)) ctx_.AddTrailingMetadata(Str(k), Str(v));
    EndStream(ustatus_.ok() ? ustatus_ : FromUpstream(ustatus_));
  }

  // The stream's outcome is known: what is answered still goes out, then the status.
  void EndStream(const g::Status& status) {
    StreamState& s = *stream_state_;
    if (s.ended) return;
    s.ended = true;
    s.final_status = status;
    s.to_upstream.clear();
    if (alarm_) alarm_->Cancel();
    // Requests the replica never answered get no answer; the ones answered here still do.
    s.slots.erase(std::remove_if(s.slots.begin(), s.slots.end(), [](const Slot& x) { return !x.filled; }),
                  s.slots.end());
    Flush();
    MaybeFinishStream();
  }

  // Moves the answers now due (the filled slots at the front) to the client.
  void Flush() {
    StreamState& s = *stream_state_;
    while (!s.slots.empty() && s.slots.front().filled) {
      s.to_client.push_back(std::move(s.slots.front().bytes));
      s.slots.pop_front();
    }
    WriteClient();
  }

  void WriteClient() {
    StreamState& s = *stream_state_;
    if (s.writing || s.to_client.empty() || s.finishing) return;
    if (!s.initial_sent) {
      s.initial_sent = true;
      if (s.up && s.responses > 0)
        for (const auto& [k, v] : uctx_->GetServerInitialMetadata())
          if (Forwardable(k)) ctx_.AddInitialMetadata(Str(k), Str(v));
      if (revision_) ctx_.AddInitialMetadata("ferry-revision", revision_->name);
    }
    s.client_out = std::move(s.to_client.front());
    s.to_client.pop_front();
    s.writing = true;
    stream_.Write(s.client_out, Arm(kWrite));
  }

  void OnClientWrite(bool ok) {
    StreamState& s = *stream_state_;
    s.writing = false;
    if (!ok) {  // the client is gone: drop the rest, stop the replica's work
      s.to_client.clear();
      s.slots.clear();
      if (uctx_) uctx_->TryCancel();
      if (!s.ended && !s.up) EndStream(g::Status(g::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    WriteClient();
    ReadMore();
    if (s.up && s.up_open) UpRead();
    MaybeFinishStream();
  }

  void MaybeFinishStream() {
    StreamState& s = *stream_state_;
    // Without a route (every request so far named an unknown model) the stream ends
    // when the client's requests do.
    const bool over = s.ended || (s.reads_done && !place_.dep);
    if (s.finishing || !over || s.writing || !s.to_client.empty() || !s.slots.empty()) return;
    s.finishing = true;
    if (revision_) ctx_.AddTrailingMetadata("ferry-revision", revision_->name);
    Finish(s.ended ? s.final_status : g::Status::OK);
  }

  ForwardCore* const core_;
  g::ServerCompletionQueue* const cq_;
  Tag tags_[kOps];
  int pending_ = 0;  // operations started whose event has not come back
  g::GenericServerContext ctx_;
  g::GenericServerAsyncReaderWriter stream_{&ctx_};
  const MethodInfo* method_ = nullptr;
  bool local_ = false;  // a method of core_->local's: answered here, never routed
  const std::chrono::steady_clock::time_point admitted_ = std::chrono::steady_clock::now();
  bool cancelled_ = false;
  CallPlace place_;  // its deployment: table, cold-start wait, limiter slot

  Clock::time_point deadline_ = Clock::time_point::max();
  bool gateway_deadline_ = false;  // deadline_ is gateway.request_timeout's, not the client's
  std::unique_ptr<g::Alarm> alarm_;
  std::shared_ptr<QueueTicket> ticket_;  // while queued under gateway.max_concurrency
  std::chrono::steady_clock::time_point queue_start_;
  Clock::time_point queue_expiry_;
  StatisticsGather* gather_ = nullptr;  // a ModelStatistics gather out; frees itself once answered

  std::shared_ptr<ReplicaEndpoint> ep_;
  const RevisionRoute* revision_ = nullptr;  // ep_'s revision, inside place_.table
  std::chrono::steady_clock::time_point routed_;  // when a replica was picked (cold-start wait excluded)
  int held_ = 0;                             // this call's share of ep_->outstanding
  bool retried_ = false;
  std::unique_ptr<g::ClientContext> uctx_;  // the upstream call's
  g::Status ustatus_;

  g::ByteBuffer in_, out_;  // a unary call's request and response
  std::unique_ptr<g::GenericClientAsyncResponseReader> unary_;
  std::unique_ptr<StreamState> stream_state_;  // ModelStreamInfer only
  bool recorded_ = false;
  GatewayTrace trace_;  // off unless the engine traces
  std::string model_;   // for the trace (set only when sampled)
};

}  // namespace

std::shared_ptr<g::Channel> ChannelTo(const ForwardCore& core, ReplicaEndpoint& ep) {
  std::call_once(ep.grpc_channel_once, [&] {
    ep.grpc_channel = g::CreateCustomChannel("ipv4:127.0.0.1:" + std::to_string(ep.grpc_port),
                                             g::InsecureChannelCredentials(), core.upstream_args);
  });
  return ep.grpc_channel;
}

void AcceptOn(ForwardCore* core, g::ServerCompletionQueue* cq) { new Call(core, cq); }

}  // namespace ferry::engine::grpc_forward
