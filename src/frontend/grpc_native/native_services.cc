#include "frontend/grpc_native/native_services.h"

#include <string>

namespace ferry::frontend::grpc_native {
namespace hv1 = ::grpc::health::v1;
namespace rv = ::grpc::reflection::v1alpha;

namespace {

constexpr int kInternal = 13;

class HealthWatch final : public CallHandler, public grpc::HealthService::Subscriber {
 public:
  explicit HealthWatch(grpc::HealthService* health) : health_(health) {}

  void OnMessage(NativeCall* call, std::string_view bytes) override {
    if (!request_.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      call->Finish(kInternal, "cannot parse the request message as grpc.health.v1.HealthCheckRequest");
  }
  void OnHalfClose(NativeCall* call) override {
    if (subscribed_) return;
    call_ = call->shared_from_this();
    subscribed_ = true;
    health_->Subscribe(this);
  }
  void OnClose(NativeCall*) override {
    if (subscribed_) health_->Unsubscribe(this);
    subscribed_ = false;
    call_.reset();  // the posted updates hold their own reference
  }

  const std::string& service() const override { return request_.service(); }
  void PushLocked(grpc::HealthService::Status s) override {
    std::shared_ptr<NativeCall> call = call_;
    call->Post([this, call, s] {
      if (sent_ && s == last_) return;  // the protocol sends changes only
      sent_ = true;
      last_ = s;
      hv1::HealthCheckResponse response;
      response.set_status(s);
      call->SendProto(response);
    });
  }
  void EndLocked() override {
    std::shared_ptr<NativeCall> call = call_;
    call->Post([call] { call->Finish(0); });
  }

 private:
  grpc::HealthService* health_;
  hv1::HealthCheckRequest request_;
  std::shared_ptr<NativeCall> call_;  // while subscribed; set and reset on the loop
  bool subscribed_ = false;
  bool sent_ = false;  // on the loop
  grpc::HealthService::Status last_ = hv1::HealthCheckResponse::UNKNOWN;
};

class Reflection final : public CallHandler {
 public:
  explicit Reflection(const grpc::ReflectionService* reflection) : reflection_(reflection) {}
  void OnMessage(NativeCall* call, std::string_view bytes) override {
    rv::ServerReflectionRequest request;
    if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      return call->Finish(kInternal, "cannot parse the request message as grpc.reflection.v1alpha.ServerReflectionRequest");
    call->SendProto(reflection_->Answer(request));
  }
  void OnHalfClose(NativeCall* call) override { call->Finish(0); }

 private:
  const grpc::ReflectionService* reflection_;
};

class UnknownMethod final : public CallHandler {
 public:
  explicit UnknownMethod(std::string_view path) : path_(path) {}
  void OnStart(NativeCall* call) override { call->Finish(12, "unknown method '" + path_ + "'"); }
  void OnMessage(NativeCall*, std::string_view) override {}
  void OnHalfClose(NativeCall*) override {}

 private:
  const std::string path_;
};

}  // namespace

std::unique_ptr<CallHandler> NewHealthWatch(grpc::HealthService* health) {
  return std::make_unique<HealthWatch>(health);
}
std::unique_ptr<CallHandler> NewReflection(const grpc::ReflectionService* reflection) {
  return std::make_unique<Reflection>(reflection);
}
std::unique_ptr<CallHandler> NewUnknownMethod(std::string_view path) { return std::make_unique<UnknownMethod>(path); }

}  // namespace ferry::frontend::grpc_native
