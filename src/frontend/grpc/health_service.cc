#include "frontend/grpc/health_service.h"

namespace ferry::frontend::grpc {
namespace hv1 = ::grpc::health::v1;

// One Watch stream: writes the current status, then every change, one write at a time.
// Lock order: owner_->mu_, then mu_.
class HealthService::Watcher final : public CqHandler, public HealthService::Subscriber {
 public:
  Watcher(HealthService* owner, LiveCalls* live, ::grpc::ServerCompletionQueue* cq)
      : owner_(owner), live_(live), cq_(cq) {
    live_->Add();
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    owner_->async_.RequestWatch(&ctx_, &request_, &writer_, cq, cq, &accepted_tag_);
  }

  const std::string& service() const override { return request_.service(); }

  // Called with owner_->mu_ held.
  void PushLocked(Status s) override {
    std::lock_guard lock(mu_);
    if (done_ || ending_) return;
    pending_ = s;
    has_pending_ = true;
    WriteLocked();
  }
  void EndLocked() override {
    std::lock_guard lock(mu_);
    if (done_ || ending_) return;
    ending_ = true;
    if (!writing_) FinishLocked();
  }

  void OnEvent(int op, bool ok) override {
    if (op == kAccepted) {
      if (!ok) {  // shutting down: the call never started, so no other event comes
        delete this;
        return;
      }
      new Watcher(owner_, live_, cq_);
      owner_->Subscribe(this);
      return;
    }
    bool free_now;
    {
      std::lock_guard lock(mu_);
      switch (op) {
        case kWrite:
          writing_ = false;
          if (!ok) {
            ending_ = true;  // the client is gone; the done notification follows
            break;
          }
          WriteLocked();
          if (!writing_ && ending_) FinishLocked();
          break;
        case kFinish:
          finishing_ = false;
          break;
        case kDone:
          done_ = true;
          break;
      }
      free_now = done_ && !writing_ && !finishing_;
    }
    if (!free_now) return;
    owner_->Unsubscribe(this);
    delete this;
  }

 private:
  enum Op { kAccepted, kWrite, kFinish, kDone };

  ~Watcher() override { live_->Remove(); }

  void WriteLocked() {
    if (writing_ || finishing_ || !has_pending_ || done_) return;
    has_pending_ = false;
    if (sent_ && pending_ == last_) return;  // the protocol sends changes only
    last_ = pending_;
    sent_ = true;
    current_.set_status(pending_);
    writing_ = true;
    writer_.Write(current_, &write_tag_);
  }
  void FinishLocked() {
    if (finished_ || done_) return;
    finished_ = finishing_ = true;
    if (owner_->watch_calls_ != nullptr) owner_->watch_calls_->Count(::grpc::StatusCode::OK);
    writer_.Finish(::grpc::Status::OK, &finish_tag_);
  }

  HealthService* owner_;
  LiveCalls* live_;
  ::grpc::ServerCompletionQueue* cq_;
  ::grpc::ServerContext ctx_;
  hv1::HealthCheckRequest request_;
  ::grpc::ServerAsyncWriter<hv1::HealthCheckResponse> writer_{&ctx_};
  CqTag accepted_tag_{this, kAccepted}, write_tag_{this, kWrite}, finish_tag_{this, kFinish},
      done_tag_{this, kDone};

  std::mutex mu_;
  hv1::HealthCheckResponse current_;
  Status pending_ = hv1::HealthCheckResponse::UNKNOWN;
  Status last_ = hv1::HealthCheckResponse::UNKNOWN;
  bool has_pending_ = false, sent_ = false, writing_ = false, ending_ = false, finished_ = false,
       finishing_ = false, done_ = false;
};

HealthService::HealthService(CallCountSink* check, CallCountSink* watch) : watch_calls_(watch) {
  check_.calls = check;
  check_.request = [this](::grpc::ServerContext* ctx, hv1::HealthCheckRequest* req,
                          ::grpc::ServerAsyncResponseWriter<hv1::HealthCheckResponse>* writer,
                          ::grpc::ServerCompletionQueue* cq, void* tag) {
    async_.RequestCheck(ctx, req, writer, cq, cq, tag);
  };
  check_.handle = [this](UnaryExchange<hv1::HealthCheckRequest, hv1::HealthCheckResponse>* call) { Check(call); };
}

HealthService::~HealthService() = default;

::grpc::Service* HealthService::service() { return &async_; }

void HealthService::Arm(::grpc::ServerCompletionQueue* cq, LiveCalls* live) {
  CheckCall::Arm(&check_, live, cq);
  new Watcher(this, live, cq);
}

std::optional<HealthService::Status> HealthService::Lookup(const std::string& service) const {
  std::lock_guard lock(mu_);
  auto it = statuses_.find(service);
  if (it == statuses_.end()) return std::nullopt;
  return it->second;
}

void HealthService::Check(UnaryExchange<hv1::HealthCheckRequest, hv1::HealthCheckResponse>* call) const {
  std::optional<Status> status = Lookup(call->request().service());
  if (!status) {
    call->Finish(::grpc::Status(::grpc::StatusCode::NOT_FOUND, "unknown service '" + call->request().service() + "'"));
    return;
  }
  call->response()->set_status(*status);
  call->Finish(::grpc::Status::OK);
}

void HealthService::Subscribe(Subscriber* s) {
  std::lock_guard lock(mu_);
  watchers_.insert(s);
  if (shut_down_) {
    s->PushLocked(hv1::HealthCheckResponse::NOT_SERVING);
    s->EndLocked();
  } else {
    s->PushLocked(Get(s->service()));
  }
}

void HealthService::Unsubscribe(Subscriber* s) {
  std::lock_guard lock(mu_);
  watchers_.erase(s);
}

HealthService::Status HealthService::Get(const std::string& service) const {
  auto it = statuses_.find(service);
  return it == statuses_.end() ? hv1::HealthCheckResponse::SERVICE_UNKNOWN : it->second;
}

void HealthService::Set(const std::string& service, bool serving) {
  std::lock_guard lock(mu_);
  if (shut_down_) return;
  Status s = serving ? hv1::HealthCheckResponse::SERVING : hv1::HealthCheckResponse::NOT_SERVING;
  statuses_[service] = s;
  for (Subscriber* w : watchers_)
    if (w->service() == service) w->PushLocked(s);
}

void HealthService::Shutdown() {
  std::lock_guard lock(mu_);
  shut_down_ = true;
  for (auto& [name, s] : statuses_) s = hv1::HealthCheckResponse::NOT_SERVING;
  for (Subscriber* w : watchers_) {
    w->PushLocked(hv1::HealthCheckResponse::NOT_SERVING);
    w->EndLocked();
  }
}

}  // namespace ferry::frontend::grpc
