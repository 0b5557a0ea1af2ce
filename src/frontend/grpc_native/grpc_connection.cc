#include "frontend/grpc_native/grpc_connection.h"

#include <boost/asio.hpp>

#include <cstring>
#include <vector>

#include "protocol/grpc/grpc_codes.h"
#include "core/log.h"
#include "protocol/error_map.h"

namespace ferry::frontend::grpc_native {
namespace asio = boost::asio;
namespace wire = protocol::grpc_wire;

namespace {

// Windows: a stream may send 16 MiB before it waits for a WINDOW_UPDATE, a connection
// 32 MiB. Together with the limits on unsent answers below, they bound what a client
// that sends but never reads can make the server hold.
constexpr int32_t kStreamWindow = 16 << 20;
constexpr int32_t kConnectionWindow = 32 << 20;
// Answers not yet written to the socket: above 1 MiB on one stream, that stream's window
// is held; above 16 MiB on a connection, every stream's is, until it is under 4 MiB.
constexpr size_t kStreamUnsentHigh = 1 << 20;
constexpr size_t kUnsentHigh = 16 << 20;
constexpr size_t kUnsentLow = 4 << 20;
constexpr uint32_t kMaxConcurrentStreams = 4096;
constexpr uint32_t kMaxFrameSize = 1 << 20;

using namespace protocol::grpc_code;  // NOLINT: the gRPC status codes

nghttp2_nv Header(std::string_view name, std::string_view value, bool static_value = true) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    static_cast<uint8_t>(NGHTTP2_NV_FLAG_NO_COPY_NAME |
                                         (static_value ? NGHTTP2_NV_FLAG_NO_COPY_VALUE : 0))};
}

// A header nghttp2 copies at once (metadata: its strings may change before it is sent).
nghttp2_nv CopiedHeader(const std::string& name, const std::string& value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

// ---------------------------------------------------------------- NativeCall

std::optional<std::string_view> NativeCall::Metadata(std::string_view name) const {
  for (const auto& [k, v] : metadata_)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

asio::io_context* NativeCall::loop() const { return connection_->loop(); }

void NativeCall::AddInitialMetadata(std::string name, std::string value) {
  if (!finished() && !headers_sent_) initial_metadata_.emplace_back(std::move(name), std::move(value));
}

void NativeCall::AddTrailingMetadata(std::string name, std::string value) {
  if (!finished()) trailing_metadata_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::chrono::steady_clock::time_point> NativeCall::deadline() const {
  if (!deadline_) return std::nullopt;
  return (*deadline_)->first;
}

void NativeCall::Post(std::function<void()> fn) {
  if (http::EventLoops::CurrentLoop() == connection_->loop()) {
    fn();
    return;
  }
  std::shared_ptr<GrpcConnection> c = connection_weak_.lock();
  if (!c) return;
  asio::post(*c->loop(), [c, self = shared_from_this(), fn = std::move(fn)] {
    if (!c->closed_) fn();
  });
}

void NativeCall::HoldWindow(bool hold) {
  hold_window_ = hold;
  GiveBackWindow();
}

size_t NativeCall::Unsent() const { return out_.size() - out_offset_; }

bool NativeCall::Backlogged() const { return Unsent() > kStreamUnsentHigh || connection_->backlogged_; }

bool NativeCall::Holding() const { return hold_window_ || Backlogged(); }

void NativeCall::CheckDrained() {
  if (!drain_wanted_ || closed_ || Backlogged()) return;
  drain_wanted_ = false;
  if (handler_) handler_->OnDrained(this);
}

void NativeCall::GiveBackWindow() {
  if (unconsumed_ == 0 || closed_ || Holding()) return;
  nghttp2_session_consume(connection_->session_, stream_id_, unconsumed_);
  unconsumed_ = 0;
  connection_->ScheduleFlush();  // the WINDOW_UPDATE
}

void NativeCall::Queued(size_t bytes) {
  connection_->unsent_ += bytes;
  connection_->CheckBacklog();
  Submitted();
}

void NativeCall::SendMessage(std::string_view serialized) {
  if (finished() || TooLarge(serialized.size())) return;
  wire::AppendMessagePrefix(&out_, false, static_cast<uint32_t>(serialized.size()));
  out_.append(serialized);
  Queued(wire::kPrefixBytes + serialized.size());
}

void NativeCall::SendProto(const google::protobuf::MessageLite& message) {
  if (finished()) return;
  const size_t size = message.ByteSizeLong();
  if (TooLarge(size)) return;
  wire::AppendMessagePrefix(&out_, false, static_cast<uint32_t>(size));
  const size_t at = out_.size();
  out_.resize(at + size);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out_.data() + at));
  Queued(wire::kPrefixBytes + size);
}

bool NativeCall::TooLarge(size_t size) {
  if (size <= max_message_bytes_) return false;
  Finish(kResourceExhausted,
         "Sent message larger than max (" + std::to_string(size) + " vs. " + std::to_string(max_message_bytes_) + ")");
  return true;
}

void NativeCall::Submitted() {
  if (!headers_sent_) {
    connection_->StartResponse(this, finished_);
  } else if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(connection_->session_, stream_id_);
  }
  connection_->ScheduleFlush();
}

void NativeCall::Finish(int code, std::string_view message) {
  if (finished_) return;
  finished_ = true;
  // Counted as grpc++'s transport counts: the status the method finished with, even
  // when the client has reset the stream meanwhile.
  if (counter_ != nullptr) counter_->Count(static_cast<::grpc::StatusCode>(code));
  if (closed_) return;
  status_code_ = code;
  status_message_ = wire::PercentEncode(message);
  connection_->RemoveDeadline(this);
  Submitted();
}

// ---------------------------------------------------------------- GrpcConnection

GrpcConnection::GrpcConnection(Socket socket, asio::io_context* loop, const ConnectionOptions* options,
                               MethodRouter* router, std::atomic<int>* live)
    : H2Socket(std::move(socket), loop),
      options_(options),
      router_(router),
      live_(live),
      deadline_timer_(*loop) {
  ++*live_;
  static const nghttp2_session_callbacks* cb =
      NewCallbacks({&OnBeginHeaders, &OnHeader, &OnFrameRecv, &OnDataChunk, &OnStreamCloseCb});
  // Windows are given back by hand (GrpcConnection::OnDataChunk), so a stream can hold
  // its window while it has too much work in flight.
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_session_server_new2(&session_, cb, this, option);
  nghttp2_option_del(option);
}

GrpcConnection::~GrpcConnection() { --*live_; }

void GrpcConnection::Start() {
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, kMaxFrameSize},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  Flush();
  Read();
}

void GrpcConnection::Shutdown() {
  if (closed_ || shutting_down_) return;
  shutting_down_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  Flush();
}

void GrpcConnection::Abort() { CloseSocket(); }

void GrpcConnection::OnProtocolError(int error) {
  FERRY_LOG(kDebug, "grpc: closing a connection that broke HTTP/2", ("error", nghttp2_strerror(error)));
  nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
}

void GrpcConnection::OnReadDone() {
  if (nghttp2_session_want_read(session_)) return Read();
  MaybeClose();
}

bool GrpcConnection::OnDrained() {
  bool more = false;
  std::vector<int32_t> released;
  released.swap(released_);
  if (backlogged_ && Backlog() < kUnsentLow) {
    backlogged_ = false;
    released.clear();
    for (auto& [id, call] : calls_) released.push_back(id);
  }
  // Streams whose answers nghttp2 took during the drain may give their windows back now
  // (not from inside its data callback), and tell their handlers; the WINDOW_UPDATEs go
  // in this write. By id: a handler's OnDrained may end calls.
  if (!released.empty()) {
    for (int32_t id : released)
      if (NativeCall* call = FindCall(id)) {
        call->GiveBackWindow();
        call->CheckDrained();
      }
    more = true;
  }
  if (!more) CheckBacklog();
  return more;
}

void GrpcConnection::MaybeClose() {
  if (closed_ || write_in_flight()) return;
  const bool done = shutting_down_ ? calls_.empty()
                                   : !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
  if (done) CloseSocket();
}

void GrpcConnection::CloseSocket() {
  if (closed_) return;
  ShutSocket();
  auto calls = std::move(calls_);
  calls_.clear();
  for (auto& [id, call] : calls) {
    if (!call->finished_) call->cancelled_->store(true, std::memory_order_release);
    call->closed_ = true;
    call->deadline_.reset();
    if (call->handler_) call->handler_->OnClose(call.get());
  }
  deadlines_.clear();
  deadline_timer_.cancel();
}

size_t GrpcConnection::Backlog() const { return unsent_ + buffered(); }

void GrpcConnection::CheckBacklog() {
  if (!backlogged_ && Backlog() > kUnsentHigh) backlogged_ = true;
}

NativeCall* GrpcConnection::FindCall(int32_t stream_id) {
  auto it = calls_.find(stream_id);
  return it == calls_.end() ? nullptr : it->second.get();
}

void GrpcConnection::BeginCall(int32_t stream_id) {
  auto call = std::make_shared<NativeCall>(this, stream_id);
  call->connection_weak_ = Self();
  call->max_message_bytes_ = options_->max_message_bytes;
  calls_.emplace(stream_id, std::move(call));
}

void GrpcConnection::StartCall(NativeCall* call) {
  call->started_ = true;
  auto http_error = [&](const char* status) {
    call->finished_ = call->headers_sent_ = true;
    const nghttp2_nv nv[] = {Header(":status", status), Header("content-type", "text/plain")};
    nghttp2_submit_response(session_, call->stream_id_, nv, std::size(nv), nullptr);
  };
  if (!call->post_ || !call->routed_) return http_error("405");
  // The gRPC spec: a content type that is not gRPC's gets HTTP 415, not a gRPC status.
  if (!call->grpc_content_type_) return http_error("415");
  if (!call->encoding_.empty() && call->encoding_ != "identity") {
    if (call->encoding_ == "gzip") {
      call->request_encoding_ = protocol::Encoding::kGzip;
    } else if (call->encoding_ == "deflate") {
      call->request_encoding_ = protocol::Encoding::kDeflate;
    } else {
      return call->Finish(kUnimplemented, "grpc-encoding '" + call->encoding_ +
                                                  "' is not supported; use identity, gzip or deflate");
    }
  }
  if (!call->timeout_.empty()) {
    auto timeout = wire::ParseTimeout(call->timeout_);
    if (!timeout.ok()) return call->Finish(kInvalidArgument, timeout.status().message());
    AddDeadline(call, std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(*timeout));
  }
  call->deframer_.emplace(options_->max_message_bytes);
  call->handler_->OnStart(call);
}

void GrpcConnection::OnData(NativeCall* call, std::string_view chunk) {
  if (!call->started_ || call->finished() || !call->deframer_) return;
  Status s = call->deframer_->Feed(chunk, [&](const wire::Message& m) {
    if (!m.compressed) {
      call->handler_->OnMessage(call, m.bytes);
      return !call->finished();
    }
    if (call->request_encoding_ == protocol::Encoding::kIdentity) {
      call->Finish(kInternal, "a compressed message arrived on a call whose grpc-encoding is identity");
      return false;
    }
    auto inflated = protocol::Decompress(m.bytes, options_->max_message_bytes);
    if (!inflated.ok()) {
      call->Finish(protocol::GrpcCodeFor(inflated.status().code()),
                   "grpc-encoding " + call->encoding_ + ": " + inflated.status().message());
      return false;
    }
    call->handler_->OnMessage(call, *inflated);
    return !call->finished();
  });
  if (!s.ok()) call->Finish(protocol::GrpcCodeFor(s.code()), s.message());
}

void GrpcConnection::OnHalfClose(NativeCall* call) {
  if (!call->started_ || call->finished()) return;
  if (call->deframer_ && call->deframer_->mid_message())
    return call->Finish(kInternal, "the request stream ended inside a message");
  call->handler_->OnHalfClose(call);
}

void GrpcConnection::OnStreamClose(int32_t stream_id) {
  auto it = calls_.find(stream_id);
  if (it == calls_.end()) return;
  std::shared_ptr<NativeCall> call = std::move(it->second);
  calls_.erase(it);
  if (!call->finished_) call->cancelled_->store(true, std::memory_order_release);
  call->closed_ = true;
  unsent_ -= call->Unsent();
  if (call->unconsumed_ > 0) nghttp2_session_consume_connection(session_, call->unconsumed_);
  call->unconsumed_ = 0;
  RemoveDeadline(call.get());
  if (call->handler_) call->handler_->OnClose(call.get());
}

void GrpcConnection::AddDeadline(NativeCall* call, std::chrono::steady_clock::time_point at) {
  call->deadline_ = deadlines_.emplace(at, call);
  if (at < timer_at_) ArmDeadlineTimer();
}

void GrpcConnection::RemoveDeadline(NativeCall* call) {
  if (!call->deadline_) return;
  deadlines_.erase(*call->deadline_);
  call->deadline_.reset();
  // The timer stays armed: a wake-up with nothing due is cheaper than re-arming per call.
}

void GrpcConnection::ArmDeadlineTimer() {
  timer_at_ = deadlines_.begin()->first;
  deadline_timer_.expires_at(timer_at_);
  deadline_timer_.async_wait([self = Self()](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    self->timer_at_ = std::chrono::steady_clock::time_point::max();
    self->ExpireDeadlines();
  });
}

void GrpcConnection::ExpireDeadlines() {
  const auto now = std::chrono::steady_clock::now();
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    NativeCall* call = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    call->deadline_.reset();
    call->cancelled_->store(true, std::memory_order_release);
    call->Finish(kDeadlineExceeded, "Deadline Exceeded");
  }
  if (!deadlines_.empty()) ArmDeadlineTimer();
}

void GrpcConnection::StartResponse(NativeCall* call, bool trailers_only) {
  call->headers_sent_ = true;
  std::vector<nghttp2_nv> nv = {Header(":status", "200"), Header("content-type", "application/grpc")};
  auto add = [&nv](const std::vector<std::pair<std::string, std::string>>& metadata) {
    for (const auto& [k, v] : metadata) nv.push_back(CopiedHeader(k, v));
  };
  add(call->initial_metadata_);
  if (trailers_only) {
    const std::string code = std::to_string(call->status_code_);
    nv.push_back(Header("grpc-status", code, false));
    if (!call->status_message_.empty()) nv.push_back(Header("grpc-message", call->status_message_, false));
    add(call->trailing_metadata_);
    nghttp2_submit_response(session_, call->stream_id_, nv.data(), nv.size(), nullptr);
    return;
  }
  nv.push_back(Header("grpc-accept-encoding", "identity,deflate,gzip"));
  nghttp2_data_provider provider;
  provider.source.ptr = call;
  provider.read_callback = &ReadResponse;
  nghttp2_submit_response(session_, call->stream_id_, nv.data(), nv.size(), &provider);
}

ssize_t GrpcConnection::ReadResponse(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                                     uint32_t* flags, nghttp2_data_source* source, void* user_data) {
  auto* self = static_cast<GrpcConnection*>(user_data);
  auto* call = static_cast<NativeCall*>(source->ptr);
  const size_t n = std::min(length, call->Unsent());
  if (n > 0) std::memcpy(buf, call->out_.data() + call->out_offset_, n);
  call->out_offset_ += n;
  self->unsent_ -= n;
  if ((call->unconsumed_ > 0 || call->drain_wanted_) && call->Unsent() <= kStreamUnsentHigh)
    self->released_.push_back(stream_id);
  if (call->out_offset_ == call->out_.size()) {
    call->out_.clear();
    call->out_offset_ = 0;
    if (call->finished_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
      const std::string code = std::to_string(call->status_code_);
      std::vector<nghttp2_nv> nv = {Header("grpc-status", code, false)};
      if (!call->status_message_.empty()) nv.push_back(Header("grpc-message", call->status_message_, false));
      for (const auto& [k, v] : call->trailing_metadata_) nv.push_back(CopiedHeader(k, v));
      nghttp2_submit_trailer(session, stream_id, nv.data(), nv.size());
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      call->deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

// ---------------------------------------------------------------- nghttp2 callbacks

int GrpcConnection::OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    static_cast<GrpcConnection*>(user_data)->BeginCall(frame->hd.stream_id);
  return 0;
}

int GrpcConnection::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                             const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto* self = static_cast<GrpcConnection*>(user_data);
  NativeCall* call = self->FindCall(frame->hd.stream_id);
  if (call == nullptr) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":path") {
    // Routed now, so the path is never copied (nghttp2 checks that it comes once).
    Route route = self->router_->Find(v);
    call->handler_ = std::move(route.handler);
    call->counter_ = route.counter;
    call->routed_ = true;
  } else if (n == ":method") {
    call->post_ = v == "POST";
  } else if (n == "content-type") {
    call->grpc_content_type_ = v.substr(0, 16) == "application/grpc" && (v.size() == 16 || v[16] == '+' || v[16] == ';');
  } else if (n == "grpc-timeout") {
    call->timeout_ = v;
  } else if (n == "grpc-encoding") {
    call->encoding_ = v;
  } else if (!n.empty() && n[0] != ':' && n != "te" && n != "user-agent" && n != "grpc-accept-encoding" &&
             n != "accept-encoding" && n != "content-length") {
    call->metadata_.emplace_back(n, v);
  }
  return 0;
}

int GrpcConnection::OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  auto* self = static_cast<GrpcConnection*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  NativeCall* call = self->FindCall(frame->hd.stream_id);
  if (call == nullptr) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) self->StartCall(call);
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) self->OnHalfClose(call);
  return 0;
}

int GrpcConnection::OnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                                void* user_data) {
  auto* self = static_cast<GrpcConnection*>(user_data);
  NativeCall* call = self->FindCall(stream_id);
  if (call != nullptr) self->OnData(call, std::string_view(reinterpret_cast<const char*>(data), len));
  if (call != nullptr && !call->finished() && call->Holding()) {
    call->unconsumed_ += len;
  } else {
    nghttp2_session_consume(self->session_, stream_id, len);  // the connection's window too
  }
  return 0;
}

int GrpcConnection::OnStreamCloseCb(nghttp2_session*, int32_t stream_id, uint32_t, void* user_data) {
  static_cast<GrpcConnection*>(user_data)->OnStreamClose(stream_id);
  return 0;
}

}  // namespace ferry::frontend::grpc_native
