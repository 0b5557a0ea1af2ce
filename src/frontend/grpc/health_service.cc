#include "frontend/grpc/health_service.h"

namespace ferry::frontend::grpc {
namespace hv1 = ::grpc::health::v1;

// One Watch stream: writes the current status, then every change, one write at a time.
class HealthService::Watcher final : public ::grpc::ServerWriteReactor<hv1::HealthCheckResponse> {
 public:
  Watcher(HealthService* owner, std::string service) : owner_(owner), service_(std::move(service)) {
    std::lock_guard lock(owner_->mu_);
    owner_->watchers_.insert(this);
    PushLocked(owner_->Get(service_));
  }

  const std::string& service() const { return service_; }

  // Called with owner_->mu_ held.
  void PushLocked(Status s) {
    std::lock_guard lock(mu_);
    if (done_) return;
    pending_ = s;
    has_pending_ = true;
    WriteLocked();
  }
  void EndLocked() {
    std::lock_guard lock(mu_);
    if (done_) return;
    ending_ = true;
    if (!writing_) FinishLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) return FinishLocked();
    if (has_pending_) return WriteLocked();
    if (ending_) FinishLocked();
  }
  void OnCancel() override {
    std::lock_guard lock(mu_);
    if (!writing_) FinishLocked();
    else ending_ = true;
  }
  void OnDone() override {
    {
      std::lock_guard lock(owner_->mu_);
      owner_->watchers_.erase(this);
    }
    { std::lock_guard lock(mu_); }
    delete this;
  }

 private:
  void WriteLocked() {
    if (writing_ || !has_pending_ || done_) return;
    has_pending_ = false;
    if (sent_ && pending_ == last_) return;  // the protocol sends changes only
    last_ = pending_;
    sent_ = true;
    current_.set_status(pending_);
    writing_ = true;
    StartWrite(&current_);
  }
  void FinishLocked() {
    if (done_) return;
    done_ = true;
    Finish(::grpc::Status::OK);
  }

  HealthService* owner_;
  const std::string service_;
  std::mutex mu_;
  hv1::HealthCheckResponse current_;
  Status pending_ = hv1::HealthCheckResponse::UNKNOWN;
  Status last_ = hv1::HealthCheckResponse::UNKNOWN;
  bool has_pending_ = false, sent_ = false, writing_ = false, ending_ = false, done_ = false;
};

HealthService::Status HealthService::Get(const std::string& service) const {
  auto it = statuses_.find(service);
  return it == statuses_.end() ? hv1::HealthCheckResponse::SERVICE_UNKNOWN : it->second;
}

void HealthService::Set(const std::string& service, bool serving) {
  std::lock_guard lock(mu_);
  if (shut_down_) return;
  Status s = serving ? hv1::HealthCheckResponse::SERVING : hv1::HealthCheckResponse::NOT_SERVING;
  statuses_[service] = s;
  for (Watcher* w : watchers_)
    if (w->service() == service) w->PushLocked(s);
}

void HealthService::Shutdown() {
  std::lock_guard lock(mu_);
  shut_down_ = true;
  for (auto& [name, s] : statuses_) s = hv1::HealthCheckResponse::NOT_SERVING;
  for (Watcher* w : watchers_) {
    w->PushLocked(hv1::HealthCheckResponse::NOT_SERVING);
    w->EndLocked();
  }
}

::grpc::ServerUnaryReactor* HealthService::Check(::grpc::CallbackServerContext* ctx, const hv1::HealthCheckRequest* req,
                                                 hv1::HealthCheckResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  std::lock_guard lock(mu_);
  auto it = statuses_.find(req->service());
  if (it == statuses_.end()) {
    reactor->Finish(::grpc::Status(::grpc::StatusCode::NOT_FOUND, "unknown service '" + req->service() + "'"));
  } else {
    resp->set_status(it->second);
    reactor->Finish(::grpc::Status::OK);
  }
  return reactor;
}

::grpc::ServerWriteReactor<hv1::HealthCheckResponse>* HealthService::Watch(::grpc::CallbackServerContext*,
                                                                           const hv1::HealthCheckRequest* req) {
  return new Watcher(this, req->service());
}

}  // namespace ferry::frontend::grpc
