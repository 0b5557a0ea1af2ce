#include "frontend/grpc/stream_infer.h"

#include <map>
#include <mutex>

#include "protocol/grpc/grpc_codec.h"

namespace ferry::frontend::grpc {
namespace {

// Requests a stream may have in flight before it stops reading more.
constexpr size_t kMaxInFlightPerStream = 256;

class StreamInferReactor final
    : public ::grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse> {
 public:
  StreamInferReactor(server::Server* server, ::grpc::CallbackServerContext* context)
      : server_(server), context_(context) {
    std::lock_guard lock(mu_);
    ReadLocked();
  }

  void OnReadDone(bool ok) override {
    std::unique_lock lock(mu_);
    reading_ = false;
    if (!ok) {  // the client finished sending (or went away)
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    auto message = std::make_shared<inference::ModelInferRequest>(std::move(incoming_));
    incoming_.Clear();
    const uint64_t seq = next_seq_++;
    ++in_flight_;
    if (in_flight_ < kMaxInFlightPerStream) ReadLocked();
    lock.unlock();

    auto decoded = protocol::DecodeModelInferRequest(message);
    if (!decoded.ok()) {
      server_->CountFailure(message->model_name(), message->model_version(), decoded.status(), Frontend::kGrpc,
                            message->id());
      return Complete(seq, message->id(), decoded.status());
    }
    decoded->frontend = Frontend::kGrpc;
    decoded->cancelled = [ctx = context_] { return ctx->IsCancelled(); };
    decoded->trace_parent = TraceParent(context_->client_metadata());
    server_->Infer(std::move(decoded).value(), [this, seq, id = message->id()](Result<InferResponse> r) {
      Complete(seq, id, std::move(r));
    });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) broken_ = true;  // the stream is gone: drop what is left
    WriteLocked();
    MaybeFinishLocked();
  }

  void OnDone() override {
    // Finish may be called with mu_ held; wait for that holder before going away.
    { std::lock_guard lock(mu_); }
    delete this;
  }

 private:
  void Complete(uint64_t seq, const std::string& id, Result<InferResponse> result) {
    inference::ModelStreamInferResponse out;
    if (result.ok()) {
      protocol::EncodeModelInferResponse(*result, out.mutable_infer_response());
    } else {
      out.set_error_message(result.status().message());
      out.mutable_infer_response()->set_id(id);
    }
    std::lock_guard lock(mu_);
    ready_.emplace(seq, std::move(out));
    --in_flight_;
    if (!reading_ && !reads_done_ && in_flight_ < kMaxInFlightPerStream) ReadLocked();
    WriteLocked();
    MaybeFinishLocked();
  }

  void ReadLocked() {
    reading_ = true;
    StartRead(&incoming_);
  }

  // Writes the next response in request order, one write at a time.
  void WriteLocked() {
    if (writing_) return;
    if (broken_) {
      ready_.clear();
      return;
    }
    auto it = ready_.find(next_write_);
    if (it == ready_.end()) return;
    current_ = std::move(it->second);
    ready_.erase(it);
    ++next_write_;
    writing_ = true;
    StartWrite(&current_);
  }

  void MaybeFinishLocked() {
    if (finished_ || !reads_done_ || in_flight_ > 0 || writing_ || !ready_.empty()) return;
    finished_ = true;
    Finish(::grpc::Status::OK);
  }

  server::Server* server_;
  ::grpc::CallbackServerContext* context_;  // valid until OnDone, after every request finished
  std::mutex mu_;
  inference::ModelInferRequest incoming_;  // the read in progress
  inference::ModelStreamInferResponse current_;  // the write in progress
  std::map<uint64_t, inference::ModelStreamInferResponse> ready_;  // answered, not yet written
  uint64_t next_seq_ = 0;
  uint64_t next_write_ = 0;
  size_t in_flight_ = 0;
  bool reading_ = false;
  bool reads_done_ = false;
  bool writing_ = false;
  bool broken_ = false;
  bool finished_ = false;
};

}  // namespace

::grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>* NewStreamInferReactor(
    server::Server* server, ::grpc::CallbackServerContext* context) {
  return new StreamInferReactor(server, context);
}

}  // namespace ferry::frontend::grpc
