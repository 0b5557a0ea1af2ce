#include "engine/grpc_upstream.h"

#include <boost/asio.hpp>

#include <cstring>

#include "protocol/grpc/grpc_codes.h"
#include "core/log.h"

namespace ferry::engine {
namespace asio = boost::asio;
namespace wire = protocol::grpc_wire;

namespace {

// What a replica may send on one call before the gateway gives the bytes back: 1 MiB,
// as much as a client stream of the gateway may have unsent before it is held
// (GrpcConnection). Given back as it arrives (a WINDOW_UPDATE each half window) unless
// the stream is held, so it only bounds what a held stream's answers put in the gateway.
constexpr int32_t kStreamWindow = 1 << 20;
// Always given back at once (see the header): large, so it never paces the streams.
constexpr int32_t kConnectionWindow = 1 << 30;
// A request buffer's taken prefix is dropped once it is this large and half the buffer.
constexpr size_t kCompactAt = 1 << 20;

using namespace protocol::grpc_code;  // NOLINT: the gRPC status codes

nghttp2_nv Nv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE};
}

// grpc-timeout: at most 8 digits, in the finest unit that holds the value (rounded up).
std::string EncodeTimeout(std::chrono::nanoseconds t) {
  const int64_t ns = std::max<int64_t>(t.count(), 1);
  constexpr int64_t kMax = 99999999;
  const std::pair<int64_t, char> units[] = {{1, 'n'}, {1000, 'u'}, {1000000, 'm'}, {1000000000, 'S'},
                                            {60000000000, 'M'}};
  for (const auto& [per, unit] : units) {
    const int64_t n = (ns + per - 1) / per;
    if (n <= kMax) return std::to_string(n) + unit;
  }
  return std::to_string(std::min<int64_t>(kMax, (ns + 3599999999999) / 3600000000000)) + "H";
}

// The gRPC spec's mapping of an HTTP status that came without grpc-status.
int CodeForHttpStatus(std::string_view status) {
  if (status == "429" || status == "502" || status == "503" || status == "504") return kUnavailable;
  if (status == "400") return kInternal;
  return kUnknown;
}

}  // namespace

std::shared_ptr<GrpcUpstreamSession> GrpcUpstreamSession::Connect(asio::io_context* loop, uint16_t port) {
  auto s = std::make_shared<GrpcUpstreamSession>(loop, port);
  s->socket_.async_connect(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port),
                           [s](const boost::system::error_code& ec) { s->Connected(ec); });
  return s;
}

GrpcUpstreamSession::GrpcUpstreamSession(asio::io_context* loop, uint16_t port)
    : H2Socket(Socket(loop->get_executor()), loop), port_(port), authority_("127.0.0.1:" + std::to_string(port)) {
  static const nghttp2_session_callbacks* cb =
      frontend::grpc_native::NewCallbacks({nullptr, &OnHeader, &OnFrameRecv, &OnDataChunk, &OnStreamClose});
  // Windows are given back by hand (OnDataChunk, HoldWindow).
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_session_client_new2(&session_, cb, this, option);
  nghttp2_option_del(option);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
}

void GrpcUpstreamSession::OnProtocolError(int error) { Close(std::string("HTTP/2: ") + nghttp2_strerror(error)); }

bool GrpcUpstreamSession::usable() const {
  return !closed_ && !goaway_ && nghttp2_session_check_request_allowed(session_) != 0;
}

void GrpcUpstreamSession::Connected(const boost::system::error_code& ec) {
  if (closed_) return;
  if (ec) return Close("cannot connect to " + authority_ + ": " + ec.message());
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  connected_ = true;
  Flush();
  Read();
}

int32_t GrpcUpstreamSession::Start(UpstreamObserver* observer, std::string_view path, const GrpcMetadata& metadata,
                                   std::optional<std::chrono::nanoseconds> timeout) {
  if (closed_) return -1;
  std::vector<nghttp2_nv> nv = {Nv(":method", "POST"),          Nv(":scheme", "http"),
                                Nv(":path", path),              Nv(":authority", authority_),
                                Nv("content-type", "application/grpc"), Nv("te", "trailers"),
                                Nv("grpc-accept-encoding", "identity")};
  std::string timeout_value;
  if (timeout) {
    timeout_value = EncodeTimeout(*timeout);
    nv.push_back(Nv("grpc-timeout", timeout_value));
  }
  for (const auto& [k, v] : metadata) nv.push_back(Nv(k, v));
  auto stream = std::make_unique<Stream>();
  stream->observer = observer;
  nghttp2_data_provider provider;
  provider.source.ptr = stream.get();
  provider.read_callback = &ReadRequest;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &provider, nullptr);
  if (id < 0) return id;
  streams_.emplace(id, std::move(stream));
  ScheduleFlush();
  return id;
}

void GrpcUpstreamSession::Send(int32_t id, std::string_view message) {
  Stream* s = Find(id);
  if (s == nullptr || s->half_closed) return;
  wire::AppendMessagePrefix(&s->out, false, static_cast<uint32_t>(message.size()));
  s->out.append(message);
  Resume(id, s);
}

void GrpcUpstreamSession::HalfClose(int32_t id) {
  Stream* s = Find(id);
  if (s == nullptr || s->half_closed) return;
  s->half_closed = true;
  Resume(id, s);
}

void GrpcUpstreamSession::Resume(int32_t id, Stream* s) {
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  ScheduleFlush();
}

void GrpcUpstreamSession::Cancel(int32_t id) {
  Stream* s = Find(id);
  if (s == nullptr) return;
  s->observer = nullptr;
  if (closed_) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  ScheduleFlush();
}

void GrpcUpstreamSession::HoldWindow(int32_t id, bool hold) {
  Stream* s = Find(id);
  if (s == nullptr || s->held == hold) return;
  s->held = hold;
  if (hold || s->unconsumed == 0 || closed_) return;
  nghttp2_session_consume_stream(session_, id, s->unconsumed);
  s->unconsumed = 0;
  ScheduleFlush();  // the WINDOW_UPDATE
}

GrpcUpstreamSession::Stream* GrpcUpstreamSession::Find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void GrpcUpstreamSession::Close(std::string_view why) {
  if (closed_) return;
  ShutSocket();
  close_reason_ = why;
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, s] : streams) {
    if (s->observer == nullptr) continue;
    UpstreamResult r = std::move(s->result);
    r.code = kUnavailable;
    r.message = "the connection to the replica at " + authority_ + " failed: " + close_reason_;
    s->observer->OnUpstreamClose(std::move(r));
  }
  if (auto fn = std::move(on_closed_)) fn();
}

void GrpcUpstreamSession::End(int32_t id, Stream* s, uint32_t error_code) {
  UpstreamResult r = std::move(s->result);
  if (!s->has_status) {
    if (!s->http_ok) {
      // CodeForHttpStatus set r.code when the headers came.
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
      r.code = kUnavailable;
      r.message = "the replica refused the stream (it is shutting down)";
    } else if (error_code == NGHTTP2_CANCEL) {
      r.code = kCancelled;
      r.message = "the replica cancelled the stream";
    } else if (error_code == NGHTTP2_ENHANCE_YOUR_CALM) {
      r.code = kResourceExhausted;
      r.message = "the replica reset the stream: ENHANCE_YOUR_CALM";
    } else {
      r.code = kInternal;
      r.message = error_code == NGHTTP2_NO_ERROR
                      ? std::string("the replica ended the stream without a gRPC status")
                      : std::string("the replica reset the stream: ") + nghttp2_http2_strerror(error_code);
    }
  }
  UpstreamObserver* observer = s->observer;
  streams_.erase(id);  // frees s
  if (observer != nullptr) observer->OnUpstreamClose(std::move(r));
}

ssize_t GrpcUpstreamSession::ReadRequest(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                                         nghttp2_data_source* source, void*) {
  auto* s = static_cast<Stream*>(source->ptr);
  const size_t n = std::min(length, s->out.size() - s->out_offset);
  if (n > 0) std::memcpy(buf, s->out.data() + s->out_offset, n);
  s->out_offset += n;
  if (s->out_offset >= kCompactAt && s->out_offset * 2 >= s->out.size()) {
    // A replica that holds its window takes the requests slowly while more come: drop
    // what it took, or the buffer would keep every request since it last ran empty.
    s->out.erase(0, s->out_offset);
    s->out_offset = 0;
  }
  if (s->out_offset == s->out.size()) {
    s->out.clear();
    s->out_offset = 0;
    if (s->half_closed) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      s->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

int GrpcUpstreamSession::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                                  const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  auto* self = static_cast<GrpcUpstreamSession*>(user_data);
  Stream* s = self->Find(frame->hd.stream_id);
  if (s == nullptr) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  const bool trailers = frame->headers.cat == NGHTTP2_HCAT_HEADERS;
  if (n == ":status") {
    s->http_ok = v == "200";
    if (!s->http_ok) {
      s->result.code = CodeForHttpStatus(v);
      s->result.message = "the replica answered HTTP status " + std::string(v);
    }
  } else if (n == "grpc-status") {
    int code = 0;
    for (char c : v) code = (c >= '0' && c <= '9') ? code * 10 + (c - '0') : kUnknown;
    s->result.code = code;
    s->has_status = true;
  } else if (n == "grpc-message") {
    s->result.message = wire::PercentDecode(v);
  } else if (!n.empty() && n[0] != ':' && n != "content-type" && n != "grpc-encoding" &&
             n != "grpc-accept-encoding" && n != "content-length") {
    (trailers ? s->result.trailing : s->result.initial).emplace_back(n, v);
  }
  return 0;
}

int GrpcUpstreamSession::OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  auto* self = static_cast<GrpcUpstreamSession*>(user_data);
  if (frame->hd.type == NGHTTP2_GOAWAY) self->goaway_ = true;
  return 0;
}

int GrpcUpstreamSession::OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                                     size_t len, void* user_data) {
  auto* self = static_cast<GrpcUpstreamSession*>(user_data);
  // The connection's window at once; the stream's after the observer had the bytes,
  // unless it holds the stream meanwhile (a stream gone or failed: at once too).
  nghttp2_session_consume_connection(session, len);
  Stream* s = self->Find(stream_id);
  if (s == nullptr || s->has_status) {
    nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
  }
  const Status st = s->deframer.Feed(std::string_view(reinterpret_cast<const char*>(data), len),
                                     [&](const wire::Message& m) {
                                       if (m.compressed) {
                                         s->result.code = kInternal;
                                         s->result.message = "the replica sent a compressed message unasked";
                                         s->has_status = true;
                                         return false;
                                       }
                                       s->result.responded = true;
                                       if (s->observer != nullptr) s->observer->OnUpstreamMessage(m.bytes, s->result.initial);
                                       return true;
                                     });
  if (!st.ok() && !s->has_status) {
    s->result.code = kInternal;
    s->result.message = "the replica's answer is malformed: " + st.message();
    s->has_status = true;
  }
  if (s->has_status) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_INTERNAL_ERROR);
  if (s->held && !s->has_status) {
    s->unconsumed += len;
  } else {
    nghttp2_session_consume_stream(session, stream_id, len);
  }
  return 0;
}

int GrpcUpstreamSession::OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user_data) {
  auto* self = static_cast<GrpcUpstreamSession*>(user_data);
  if (Stream* s = self->Find(stream_id)) self->End(stream_id, s, error_code);
  return 0;
}

}  // namespace ferry::engine
