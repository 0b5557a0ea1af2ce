#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "frontend/grpc_native/h2_socket.h"
#include "protocol/grpc/grpc_framing.h"

namespace ferry::engine {

using GrpcMetadata = std::vector<std::pair<std::string, std::string>>;

// How an upstream call ended.
struct UpstreamResult {
  int code = 0;          // the gRPC status code (the replica's, or the transport's)
  std::string message;   // decoded grpc-message
  GrpcMetadata initial;  // the response headers' custom metadata
  GrpcMetadata trailing;
  // Whether any response byte came (headers or a message): a call that fails before
  // is the gateway's to retry; one that fails after is not.
  bool responded = false;
};

// What an upstream call tells its caller; every method runs on the session's loop.
class UpstreamObserver {
 public:
  virtual ~UpstreamObserver() = default;
  // One whole response message; `bytes` is valid during the call only. `initial`: the
  // response headers' metadata, for the first message's relay.
  virtual void OnUpstreamMessage(std::string_view bytes, const GrpcMetadata& initial) = 0;
  // The call is over; no other event follows.
  virtual void OnUpstreamClose(UpstreamResult result) = 0;
};

// A gRPC client on one HTTP/2 connection to a replica (127.0.0.1:port): libnghttp2's
// client session does the framing, flow control and HPACK; this class does gRPC over it
// (request headers, grpc-timeout, length-prefixed messages, status trailers), so many
// calls share the connection, multiplexed. Connecting starts at construction; calls
// started meanwhile wait in nghttp2 and go out once it is up. When the connection fails
// or closes, every call still open ends UNAVAILABLE, `responded` telling whether any of
// its answer had come.
// Flow control toward the replica is by hand: a call's answer bytes are given back to
// its stream's window (1 MiB) as they arrive, except while the caller holds the stream
// (HoldWindow: its own client is not taking the answers), so a held stream's answers
// stop at one window and wait in the replica, whose own bounds then hold its requests.
// The connection's window is always given back at once: a held stream never stalls the
// others sharing the connection.
// The socket side, output coalesced into one write per loop turn, is GrpcConnection's
// (H2Socket).
// Thread-safety: everything on `loop`, the loop that owns the socket.
class GrpcUpstreamSession final : public frontend::grpc_native::H2Socket {
 public:
  static std::shared_ptr<GrpcUpstreamSession> Connect(boost::asio::io_context* loop, uint16_t port);
  GrpcUpstreamSession(boost::asio::io_context* loop, uint16_t port);

  // False once the connection failed, closed or got GOAWAY: new calls need another one.
  bool usable() const;
  uint16_t port() const { return port_; }

  // Starts a call of `path` (e.g. /inference.GRPCInferenceService/ModelInfer) with the
  // client's `metadata` and, when set, grpc-timeout `timeout`; returns its stream id.
  // `observer` gets its events until it ends or is cancelled, and must outlive that.
  // A negative id: nghttp2 refused (observer gets no event).
  int32_t Start(UpstreamObserver* observer, std::string_view path, const GrpcMetadata& metadata,
                std::optional<std::chrono::nanoseconds> timeout);
  // Sends one request message (framed here, uncompressed).
  void Send(int32_t stream, std::string_view message);
  // The client has sent its last message.
  void HalfClose(int32_t stream);
  // RST_STREAM CANCEL: the observer gets no more events.
  void Cancel(int32_t stream);
  // While held, the replica's DATA on `stream` is not given back to the stream's window,
  // so the replica can send at most one window (kStreamWindow) more of it; releasing
  // gives back what was held (a WINDOW_UPDATE). The connection's window is not held.
  void HoldWindow(int32_t stream, bool hold);
  // Closes the connection; open calls end UNAVAILABLE.
  void Close(std::string_view why);
  // Runs `fn` once, on the loop, when the session closes (its connection failed or
  // closed, GOAWAY'd and done, or Close); not at all if it closes before this is set.
  void OnClosed(std::function<void()> fn) { on_closed_ = std::move(fn); }

 private:
  struct Stream {
    UpstreamObserver* observer = nullptr;
    std::string out;  // framed request bytes not yet taken by nghttp2
    size_t out_offset = 0;
    bool half_closed = false;
    bool deferred = false;
    UpstreamResult result;
    bool has_status = false;
    bool http_ok = true;  // :status was 200
    bool held = false;      // HoldWindow: DATA is not given back to the stream's window
    size_t unconsumed = 0;  // DATA bytes received while held, not given back yet
    protocol::grpc_wire::MessageDeframer deframer{SIZE_MAX};
  };

  void Connected(const boost::system::error_code& ec);
  void OnBroken(std::string_view why) override { Close(why); }
  void OnProtocolError(int error) override;
  bool CanWrite() const override { return connected_; }
  void End(int32_t id, Stream* s, uint32_t error_code);
  void Resume(int32_t id, Stream* s);
  Stream* Find(int32_t id);

  static ssize_t ReadRequest(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags,
                             nghttp2_data_source* source, void* user_data);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t flags, void* user_data);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data, size_t len,
                         void* user_data);
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user_data);

  const uint16_t port_;
  const std::string authority_;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  bool connected_ = false;
  bool goaway_ = false;
  std::string close_reason_;
  std::function<void()> on_closed_;
};

}  // namespace ferry::engine
