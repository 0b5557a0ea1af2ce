#include "frontend/grpc/model_infer_call.h"

#include <atomic>
#include <memory>

#include "protocol/error_map.h"
#include "protocol/grpc/grpc_codec.h"

namespace ferry::frontend::grpc {
namespace g = ::grpc;

g::Status ToGrpc(const Status& s) {
  if (s.ok()) return g::Status::OK;
  return g::Status(static_cast<g::StatusCode>(protocol::GrpcCodeFor(s.code())), s.message());
}

std::optional<TraceContext> TraceParent(const std::multimap<g::string_ref, g::string_ref>& metadata) {
  auto it = metadata.find("traceparent");
  if (it == metadata.end()) return std::nullopt;
  return TraceContext::Parse(std::string_view(it->second.data(), it->second.size()));
}

namespace {

// One ModelInfer call; freed once both the write (finished) and the done notification
// have come back.
class ModelInferCall final : public CqHandler {
 public:
  ModelInferCall(const InferenceCallEnv* env, g::ServerCompletionQueue* cq) : env_(env), cq_(cq) {
    env_->live->Add();
    ctx_.AsyncNotifyWhenDone(&done_);
    env_->service->RequestModelInfer(&ctx_, &request_, &responder_, cq, cq, &accepted_);
  }

  void OnEvent(int op, bool ok) override {
    switch (op) {
      case kAccepted:
        if (!ok) {  // shutting down: the call never started, so no other event comes
          delete this;
          return;
        }
        ArmModelInfer(env_, cq_);
        Begin();
        return;
      case kDone:
        if (ctx_.IsCancelled()) cancelled_->store(true, std::memory_order_release);
        return Unref();
      case kFinished:
        return Unref();
    }
  }

 private:
  enum Op { kAccepted, kFinished, kDone };

  ~ModelInferCall() override { env_->live->Remove(); }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void Begin() {
    // The request message lives in this call until it is freed, after the response is
    // written, so the tensors may borrow it through a non-owning pointer.
    std::shared_ptr<const inference::ModelInferRequest> borrowed(std::shared_ptr<void>(), &request_);
    auto decoded = protocol::DecodeModelInferRequest(borrowed);
    if (!decoded.ok()) {
      env_->server->CountFailure(request_.model_name(), request_.model_version(), decoded.status(),
                                 Frontend::kGrpc, request_.id());
      FinishWithError(ToGrpc(decoded.status()));
      return;
    }
    decoded->frontend = Frontend::kGrpc;
    decoded->cancelled = [flag = cancelled_] { return flag->load(std::memory_order_acquire); };
    decoded->trace_parent = TraceParent(ctx_.client_metadata());
    // As over REST: a version measured as tiny may run on this completion-queue thread.
    decoded->may_run_inline = true;
    env_->server->Infer(std::move(decoded).value(), [this](Result<InferResponse> result) {
      if (!result.ok()) {
        FinishWithError(ToGrpc(result.status()));
      } else {
        protocol::EncodeModelInferResponse(*result, &response_);
        env_->infer_calls->Count(g::StatusCode::OK);
        responder_.Finish(response_, g::Status::OK, &finished_);
      }
    });
  }

  void FinishWithError(const g::Status& status) {
    env_->infer_calls->Count(status.error_code());
    responder_.FinishWithError(status, &finished_);
  }

  const InferenceCallEnv* env_;
  g::ServerCompletionQueue* cq_;
  g::ServerContext ctx_;
  inference::ModelInferRequest request_;
  inference::ModelInferResponse response_;
  g::ServerAsyncResponseWriter<inference::ModelInferResponse> responder_{&ctx_};
  // Set by the done notification when the client cancelled or went away; the scheduler
  // polls it (ServerContext::IsCancelled is not safe to call before that notification).
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  std::atomic<int> refs_{2};
  CqTag accepted_{this, kAccepted}, finished_{this, kFinished}, done_{this, kDone};
};

}  // namespace

void ArmModelInfer(const InferenceCallEnv* env, g::ServerCompletionQueue* cq) { new ModelInferCall(env, cq); }

}  // namespace ferry::frontend::grpc
