#include "frontend/grpc/stream_infer.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include "protocol/grpc/grpc_codec.h"

namespace ferry::frontend::grpc {
namespace g = ::grpc;

namespace {

// Requests a stream may have in flight before it stops reading more.
constexpr size_t kMaxInFlightPerStream = 256;

// One stream. gRPC allows one read and one write in flight at a time; the state below,
// under mu_, says which are. refs_ counts what may still touch the stream (operations
// in flight, requests in the Server facade, a handler between two critical sections);
// the stream is freed when it reaches zero after the done notification.
class StreamInferCall final : public CqHandler {
 public:
  StreamInferCall(const InferenceCallEnv* env, g::ServerCompletionQueue* cq) : env_(env), cq_(cq) {
    env_->live->Add();
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    env_->service->RequestModelStreamInfer(&ctx_, &stream_, cq, cq, &accepted_tag_);
  }

  void OnEvent(int op, bool ok) override {
    std::unique_lock lock(mu_);
    switch (op) {
      case kAccepted:
        if (!ok) {  // shutting down: the stream never started, so no other event comes
          lock.unlock();
          delete this;
          return;
        }
        lock.unlock();
        ArmModelStreamInfer(env_, cq_);
        lock.lock();
        started_ = true;
        ReadLocked();
        break;
      case kRead:
        --refs_;
        reading_ = false;
        if (!ok) {  // the client finished sending (or went away)
          reads_done_ = true;
          MaybeFinishLocked();
          break;
        }
        ++refs_;  // this handler, while unlocked
        StartRequestUnlocked(lock);
        --refs_;
        break;
      case kWrite:
        --refs_;
        writing_ = false;
        if (!ok) broken_ = true;  // the stream is gone: drop what is left
        WriteLocked();
        MaybeFinishLocked();
        break;
      case kFinish:
        --refs_;
        break;
      case kDone:
        done_ = true;
        if (ctx_.IsCancelled()) {
          cancelled_->store(true, std::memory_order_release);
          broken_ = true;
          ready_.clear();
        }
        break;
    }
    MaybeFreeLocked(lock);
  }

 private:
  enum Op { kAccepted, kRead, kWrite, kFinish, kDone };

  ~StreamInferCall() override { env_->live->Remove(); }

  // Takes the message just read, reads the next one, and hands this one to the Server
  // facade with `lock` released (a request that fails early completes inline).
  void StartRequestUnlocked(std::unique_lock<std::mutex>& lock) {
    auto message = std::make_shared<inference::ModelInferRequest>(std::move(incoming_));
    incoming_.Clear();
    const uint64_t seq = next_seq_++;
    ++in_flight_;
    ++refs_;  // the request, until Complete
    if (in_flight_ < kMaxInFlightPerStream) ReadLocked();
    lock.unlock();

    auto decoded = protocol::DecodeModelInferRequest(message);
    if (!decoded.ok()) {
      env_->server->CountFailure(message->model_name(), message->model_version(), decoded.status(),
                                 Frontend::kGrpc, message->id());
      Complete(seq, message->id(), decoded.status());
    } else {
      decoded->frontend = Frontend::kGrpc;
      decoded->cancelled = [flag = cancelled_] { return flag->load(std::memory_order_acquire); };
      decoded->trace_parent = TraceParent(ctx_.client_metadata());
      env_->server->Infer(std::move(decoded).value(), [this, seq, id = message->id()](Result<InferResponse> r) {
        Complete(seq, id, std::move(r));
      });
    }
    lock.lock();
  }

  // A request's answer, on whichever thread produced it.
  void Complete(uint64_t seq, const std::string& id, Result<InferResponse> result) {
    inference::ModelStreamInferResponse out;
    protocol::EncodeModelStreamInferResponse(result, id, &out);
    std::unique_lock lock(mu_);
    --refs_;
    --in_flight_;
    if (!broken_) ready_.emplace(seq, std::move(out));
    if (!reading_ && !reads_done_ && !broken_ && in_flight_ < kMaxInFlightPerStream) ReadLocked();
    WriteLocked();
    MaybeFinishLocked();
    MaybeFreeLocked(lock);
  }

  void ReadLocked() {
    reading_ = true;
    ++refs_;
    stream_.Read(&incoming_, &read_tag_);
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
    ++refs_;
    stream_.Write(current_, &write_tag_);
  }

  void MaybeFinishLocked() {
    if (finished_ || done_ || !reads_done_ || in_flight_ > 0 || writing_ || !ready_.empty()) return;
    finished_ = true;
    ++refs_;
    env_->stream_calls->Count(g::StatusCode::OK);
    stream_.Finish(g::Status::OK, &finish_tag_);
  }

  // Frees the stream once nothing can touch it any more; `lock` is released first.
  void MaybeFreeLocked(std::unique_lock<std::mutex>& lock) {
    if (!started_ || !done_ || refs_ > 0) return;
    lock.unlock();
    delete this;
  }

  const InferenceCallEnv* env_;
  g::ServerCompletionQueue* cq_;
  g::ServerContext ctx_;
  g::ServerAsyncReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest> stream_{&ctx_};
  // Set by the done notification when the client cancelled or went away; the requests
  // still queued see it and are dropped.
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  CqTag accepted_tag_{this, kAccepted}, read_tag_{this, kRead}, write_tag_{this, kWrite},
      finish_tag_{this, kFinish}, done_tag_{this, kDone};

  std::mutex mu_;
  inference::ModelInferRequest incoming_;        // the read in progress
  inference::ModelStreamInferResponse current_;  // the write in progress
  std::map<uint64_t, inference::ModelStreamInferResponse> ready_;  // answered, not yet written
  uint64_t next_seq_ = 0;
  uint64_t next_write_ = 0;
  size_t in_flight_ = 0;
  int refs_ = 0;
  bool started_ = false;
  bool reading_ = false;
  bool reads_done_ = false;
  bool writing_ = false;
  bool broken_ = false;
  bool finished_ = false;
  bool done_ = false;
};

}  // namespace

void ArmModelStreamInfer(const InferenceCallEnv* env, g::ServerCompletionQueue* cq) {
  new StreamInferCall(env, cq);
}

}  // namespace ferry::frontend::grpc
