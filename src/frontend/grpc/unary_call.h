#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>

#include "frontend/grpc/call_count_sink.h"
#include "frontend/grpc/cq_tag.h"

namespace ferry::frontend::grpc {

// What a unary method's handler sees of one call, whichever transport carries it (the
// grpc++ completion-queue API here, the native HTTP/2 transport in grpc_native/): the
// request, the response to fill, and Finish, which sends response() with an OK status or
// the status alone. Finish once per call, from any thread; the call is not touched after.
template <typename Req, typename Resp>
class UnaryExchange {
 public:
  virtual const Req& request() const = 0;
  virtual Resp* response() = 0;
  virtual void Finish(const ::grpc::Status& status) = 0;

 protected:
  ~UnaryExchange() = default;
};

// One call of a unary method on the completion-queue API: armed on a queue, accepted
// (which arms the next), handed to the method's handler, finished, freed.
//
// The handler runs on the polling thread that accepted the call. It answers with
// Finish, at once or later from any thread (a handler with slow work hands it to
// another thread and finishes from there; nothing slow may run on a polling thread).
// Thread-safety: Finish once per call, from any thread; the rest is internal.
template <typename Req, typename Resp>
class UnaryCall final : public CqHandler, public UnaryExchange<Req, Resp> {
 public:
  // How the generated async service requests this method, and what answers it. Lives
  // as long as calls may be armed with it.
  struct Method {
    std::function<void(::grpc::ServerContext*, Req*, ::grpc::ServerAsyncResponseWriter<Resp>*,
                       ::grpc::ServerCompletionQueue*, void* tag)>
        request;
    std::function<void(UnaryExchange<Req, Resp>*)> handle;
    CallCountSink* calls = nullptr;  // counts each call's status as it is sent; may be null
  };

  // Arms `cq` to accept one call of `method`; counted in `live` until freed.
  // REQUIRES: the server is started and `cq` is not shut down.
  static void Arm(const Method* method, LiveCalls* live, ::grpc::ServerCompletionQueue* cq) {
    auto* call = new UnaryCall(method, live, cq);
    method->request(&call->ctx_, &call->request_, &call->writer_, cq, &call->accepted_);
  }

  const Req& request() const override { return request_; }
  Resp* response() override { return &response_; }
  ::grpc::ServerContext* context() { return &ctx_; }

  // Sends response() with an OK status, or `status` alone when it is not OK.
  void Finish(const ::grpc::Status& status) override {
    if (method_->calls != nullptr) method_->calls->Count(status.error_code());
    if (status.ok()) {
      writer_.Finish(response_, status, &finished_);
    } else {
      writer_.FinishWithError(status, &finished_);
    }
  }

  void OnEvent(int op, bool ok) override {
    if (op == kAccepted && ok) {
      Arm(method_, live_, cq_);
      method_->handle(this);
      return;
    }
    // Finished, or the request failed (server shutting down): no other event comes.
    delete this;
  }

 private:
  enum Op { kAccepted, kFinished };

  UnaryCall(const Method* method, LiveCalls* live, ::grpc::ServerCompletionQueue* cq)
      : method_(method), live_(live), cq_(cq) {
    live_->Add();
  }
  ~UnaryCall() override { live_->Remove(); }

  const Method* method_;
  LiveCalls* live_;
  ::grpc::ServerCompletionQueue* cq_;
  ::grpc::ServerContext ctx_;
  Req request_;
  Resp response_;
  ::grpc::ServerAsyncResponseWriter<Resp> writer_{&ctx_};
  CqTag accepted_{this, kAccepted};
  CqTag finished_{this, kFinished};
};

}  // namespace ferry::frontend::grpc
