#include "frontend/grpc/unknown_methods.h"

#include <string>

namespace ferry::frontend::grpc {

// One call: accepted, answered with its status at once (nothing is read), freed when
// the status is sent or the call is gone.
class UnknownMethods::Call final : public CqHandler {
 public:
  Call(UnknownMethods* owner, LiveCalls* live, ::grpc::ServerCompletionQueue* cq)
      : owner_(owner), live_(live), cq_(cq) {
    live_->Add();
    owner_->async_.RequestCall(&ctx_, &stream_, cq, cq, &accepted_tag_);
  }

  void OnEvent(int op, bool ok) override {
    if (op == kAccepted && ok) {
      new Call(owner_, live_, cq_);
      if (owner_->calls_ != nullptr) owner_->calls_->Count(::grpc::StatusCode::UNIMPLEMENTED);
      stream_.Finish(::grpc::Status(::grpc::StatusCode::UNIMPLEMENTED, "unknown method '" + ctx_.method() + "'"),
                     &finish_tag_);
      return;
    }
    // Finished, or never accepted (the server is shutting down): no other event comes.
    delete this;
  }

 private:
  enum Op { kAccepted, kFinish };

  ~Call() override { live_->Remove(); }

  UnknownMethods* owner_;
  LiveCalls* live_;
  ::grpc::ServerCompletionQueue* cq_;
  ::grpc::GenericServerContext ctx_;
  ::grpc::GenericServerAsyncReaderWriter stream_{&ctx_};
  CqTag accepted_tag_{this, kAccepted}, finish_tag_{this, kFinish};
};

void UnknownMethods::Arm(::grpc::ServerCompletionQueue* cq, LiveCalls* live) { new Call(this, live, cq); }

}  // namespace ferry::frontend::grpc
