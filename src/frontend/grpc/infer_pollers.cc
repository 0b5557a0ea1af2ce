#include "frontend/grpc/infer_pollers.h"

#include <chrono>

#include "frontend/grpc/stream_infer.h"  // ToGrpc
#include "protocol/grpc/grpc_codec.h"

namespace ferry::frontend::grpc {
namespace g = ::grpc;

namespace {
// Calls each queue keeps armed for new requests; more than this many concurrent new
// calls wait in gRPC's own pending list until a slot is re-armed (immediately on accept).
constexpr int kArmedPerQueue = 16;
}  // namespace

// One ModelInfer call. Completion-queue tags point at its three Events; the call is
// deleted once both the write (finished) and the done notification have come back.
struct InferPollers::Call {
  enum class Kind { kAccepted, kFinished, kDone };
  struct Event {
    Call* call;
    Kind kind;
  };

  explicit Call(g::ServerCompletionQueue* q) : cq(q) {}

  g::ServerCompletionQueue* cq;
  g::ServerContext ctx;
  inference::ModelInferRequest request;
  inference::ModelInferResponse response;
  g::ServerAsyncResponseWriter<inference::ModelInferResponse> responder{&ctx};
  // Set by the done notification when the client cancelled or went away; the scheduler
  // polls it (ServerContext::IsCancelled is not safe to call before that notification).
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  std::atomic<int> refs{2};
  Event accepted{this, Kind::kAccepted}, finished{this, Kind::kFinished}, done{this, Kind::kDone};

  void Unref() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

InferPollers::InferPollers(g::ServerBuilder* builder, InferAsyncService* service, server::Server* server,
                           int threads)
    : service_(service), server_(server) {
  for (int i = 0; i < std::max(1, threads); ++i) queues_.push_back(builder->AddCompletionQueue());
}

InferPollers::~InferPollers() { Drain(); }

void InferPollers::Start() {
  for (auto& q : queues_) {
    for (int i = 0; i < kArmedPerQueue; ++i) Accept(q.get());
    threads_.emplace_back([this, cq = q.get()] { Run(cq); });
  }
}

void InferPollers::Accept(g::ServerCompletionQueue* cq) {
  auto* call = new Call(cq);
  call->ctx.AsyncNotifyWhenDone(&call->done);
  service_->RequestModelInfer(&call->ctx, &call->request, &call->responder, cq, cq, &call->accepted);
}

void InferPollers::Run(g::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    auto* event = static_cast<Call::Event*>(tag);
    Call* call = event->call;
    switch (event->kind) {
      case Call::Kind::kAccepted:
        if (!ok) {  // shutting down: the call never started, so no other event comes
          delete call;
          break;
        }
        Accept(cq);
        Begin(call);
        break;
      case Call::Kind::kDone:
        if (call->ctx.IsCancelled()) call->cancelled->store(true, std::memory_order_release);
        call->Unref();
        break;
      case Call::Kind::kFinished:
        call->Unref();
        break;
    }
  }
}

void InferPollers::Begin(Call* call) {
  // The request message lives in `call` until the call is deleted, after the response
  // is written, so the tensors may borrow it through a non-owning pointer.
  std::shared_ptr<const inference::ModelInferRequest> borrowed(std::shared_ptr<void>(), &call->request);
  auto decoded = protocol::DecodeModelInferRequest(borrowed);
  if (!decoded.ok()) {
    server_->CountFailure(call->request.model_name(), call->request.model_version(), decoded.status(),
                          Frontend::kGrpc, call->request.id());
    call->responder.FinishWithError(ToGrpc(decoded.status()), &call->finished);
    return;
  }
  decoded->frontend = Frontend::kGrpc;
  decoded->cancelled = [flag = call->cancelled] { return flag->load(std::memory_order_acquire); };
  decoded->trace_parent = TraceParent(call->ctx.client_metadata());
  in_server_.fetch_add(1, std::memory_order_relaxed);
  server_->Infer(std::move(decoded).value(), [this, call](Result<InferResponse> result) {
    if (!result.ok()) {
      call->responder.FinishWithError(ToGrpc(result.status()), &call->finished);
    } else {
      protocol::EncodeModelInferResponse(*result, &call->response);
      call->responder.Finish(call->response, g::Status::OK, &call->finished);
    }
    in_server_.fetch_sub(1, std::memory_order_release);
  });
}

void InferPollers::Drain() {
  if (drained_) return;
  drained_ = true;
  // A completion still to run would queue its write on a queue already shut down.
  while (in_server_.load(std::memory_order_acquire) > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (auto& q : queues_) q->Shutdown();
  if (threads_.empty()) {  // never started: drain here, gRPC requires empty queues
    for (auto& q : queues_) Run(q.get());
  }
  for (auto& t : threads_) t.join();
}

}  // namespace ferry::frontend::grpc
