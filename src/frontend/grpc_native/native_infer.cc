#include "frontend/grpc_native/native_infer.h"

#include <google/protobuf/arena.h>

#include <map>

#include "protocol/grpc/grpc_codes.h"
#include "core/trace_context.h"
#include "frontend/http/event_loops.h"
#include "protocol/error_map.h"
#include "protocol/grpc/grpc_codec.h"
#include "protocol/grpc/grpc_service.pb.h"

namespace ferry::frontend::grpc_native {
namespace pb = ::google::protobuf;

namespace {

using namespace protocol::grpc_code;  // NOLINT: the gRPC status codes
// Requests a stream may have in flight or answered but waiting for an earlier one, before
// the client is made to wait (its window is held until half of them are written), as
// the grpc++ transport stops reading.
constexpr size_t kMaxInFlightPerStream = 256;

std::optional<TraceContext> TraceParent(const NativeCall* call) {
  auto v = call->Metadata("traceparent");
  if (!v) return std::nullopt;
  return TraceContext::Parse(*v);
}

pb::ArenaOptions InlineArena(char* block, size_t size) {
  pb::ArenaOptions o;
  o.initial_block = block;
  o.initial_block_size = size;
  return o;
}

class ModelInfer final : public CallHandler {
 public:
  explicit ModelInfer(server::Server* server) : server_(server) {}

  void OnMessage(NativeCall* call, std::string_view bytes) override {
    if (request_ != nullptr) return call->Finish(kUnimplemented, "a unary method received a second request message");
    request_ = pb::Arena::CreateMessage<inference::ModelInferRequest>(&arena_);
    if (!request_->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      call->Finish(kInternal, "cannot parse the request message as inference.ModelInferRequest");
  }

  void OnHalfClose(NativeCall* call) override {
    if (request_ == nullptr) return call->Finish(kUnimplemented, "a unary call ended without a request message");
    std::shared_ptr<NativeCall> keep = call->shared_from_this();
    // The tensors borrow the request, which lives in this handler, which lives in the
    // call: the aliasing pointer keeps the call alive as long as they do.
    std::shared_ptr<const inference::ModelInferRequest> borrowed(keep, request_);
    auto decoded = protocol::DecodeModelInferRequest(std::move(borrowed));
    if (!decoded.ok()) {
      server_->CountFailure(request_->model_name(), request_->model_version(), decoded.status(), Frontend::kGrpc,
                            request_->id());
      return Fail(call, decoded.status());
    }
    decoded->frontend = Frontend::kGrpc;
    decoded->cancelled = [flag = call->cancelled()] { return flag->load(std::memory_order_acquire); };
    decoded->trace_parent = TraceParent(call);
    decoded->may_run_inline = true;
    server_->Infer(std::move(decoded).value(), [this, keep = std::move(keep)](Result<InferResponse> result) mutable {
      NativeCall* c = keep.get();
      if (http::EventLoops::CurrentLoop() == c->loop()) return Answer(c, result);
      c->Post([this, keep = std::move(keep), result = std::move(result)] { Answer(keep.get(), result); });
    });
  }

 private:
  void Fail(NativeCall* call, const Status& s) { call->Finish(protocol::GrpcCodeFor(s.code()), s.message()); }

  void Answer(NativeCall* call, const Result<InferResponse>& result) {
    if (!result.ok()) return Fail(call, result.status());
    auto* response = pb::Arena::CreateMessage<inference::ModelInferResponse>(&arena_);
    protocol::EncodeModelInferResponse(*result, response);
    call->SendProto(*response);
    call->Finish(0);
  }

  server::Server* server_;
  alignas(16) char block_[4096];
  pb::Arena arena_{InlineArena(block_, sizeof(block_))};
  inference::ModelInferRequest* request_ = nullptr;  // on arena_
};

class ModelStreamInfer final : public CallHandler {
 public:
  explicit ModelStreamInfer(server::Server* server) : server_(server) {}

  void OnMessage(NativeCall* call, std::string_view bytes) override {
    auto message = std::make_shared<inference::ModelInferRequest>();
    if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      return call->Finish(kInternal, "cannot parse the request message as inference.ModelInferRequest");
    const uint64_t seq = next_seq_++;
    ++in_flight_;
    Pace(call);
    auto decoded = protocol::DecodeModelInferRequest(message);
    if (!decoded.ok()) {
      server_->CountFailure(message->model_name(), message->model_version(), decoded.status(), Frontend::kGrpc,
                            message->id());
      return Complete(call, seq, message->id(), decoded.status());
    }
    decoded->frontend = Frontend::kGrpc;
    decoded->cancelled = [flag = call->cancelled()] { return flag->load(std::memory_order_acquire); };
    decoded->trace_parent = TraceParent(call);
    server_->Infer(std::move(decoded).value(),
                   [this, keep = call->shared_from_this(), seq, id = message->id()](Result<InferResponse> r) mutable {
                     NativeCall* c = keep.get();
                     c->Post([this, keep = std::move(keep), seq, id = std::move(id), r = std::move(r)]() mutable {
                       Complete(keep.get(), seq, id, std::move(r));
                     });
                   });
  }

  void OnHalfClose(NativeCall* call) override {
    reads_done_ = true;
    MaybeFinish(call);
  }

 private:
  // One answer, on the loop: written now if it is the next in request order.
  void Complete(NativeCall* call, uint64_t seq, const std::string& id, Result<InferResponse> result) {
    --in_flight_;
    if (call->finished()) return;
    inference::ModelStreamInferResponse out;
    protocol::EncodeModelStreamInferResponse(result, id, &out);
    if (seq != next_write_) {
      ready_.emplace(seq, std::move(out));
      return;
    }
    call->SendProto(out);
    ++next_write_;
    for (auto it = ready_.begin(); it != ready_.end() && it->first == next_write_; it = ready_.erase(it)) {
      call->SendProto(it->second);
      ++next_write_;
    }
    Pace(call);
    MaybeFinish(call);
  }

  // Answers held back by a slow earlier one count too, so one stuck request cannot make
  // the stream buffer an unbounded number of later answers.
  void Pace(NativeCall* call) {
    const size_t pending = in_flight_ + ready_.size();
    if (!held_ && pending >= kMaxInFlightPerStream) {
      held_ = true;
      call->HoldWindow(true);
    } else if (held_ && pending <= kMaxInFlightPerStream / 2) {
      held_ = false;
      call->HoldWindow(false);
    }
  }

  void MaybeFinish(NativeCall* call) {
    if (reads_done_ && in_flight_ == 0 && ready_.empty()) call->Finish(0);
  }

  server::Server* server_;
  std::map<uint64_t, inference::ModelStreamInferResponse> ready_;  // answered, waiting for earlier ones
  uint64_t next_seq_ = 0, next_write_ = 0;
  size_t in_flight_ = 0;
  bool held_ = false;  // the window is held by Pace
  bool reads_done_ = false;
};

}  // namespace

std::unique_ptr<CallHandler> NewModelInfer(server::Server* server) { return std::make_unique<ModelInfer>(server); }
std::unique_ptr<CallHandler> NewModelStreamInfer(server::Server* server) {
  return std::make_unique<ModelStreamInfer>(server);
}

}  // namespace ferry::frontend::grpc_native
