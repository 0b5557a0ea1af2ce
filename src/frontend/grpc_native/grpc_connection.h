#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "frontend/grpc_native/h2_socket.h"
#include "frontend/grpc_native/native_call.h"
#include "frontend/http/event_loops.h"

namespace ferry::frontend::grpc_native {

// Where a new call goes: the handler for its :path (unknown paths too: that handler
// answers UNIMPLEMENTED), and the counter of the method's finished calls (may be null).
struct Route {
  std::unique_ptr<CallHandler> handler;
  grpc::CallCountSink* counter = nullptr;
};

// Thread-safety: Find is called from every loop thread concurrently.
class MethodRouter {
 public:
  virtual ~MethodRouter() = default;
  virtual Route Find(std::string_view path) = 0;
};

struct ConnectionOptions {
  size_t max_message_bytes = 64 << 20;  // either direction; larger gets RESOURCE_EXHAUSTED
};

// One client connection of the native gRPC transport: libnghttp2 does the HTTP/2
// framing, flow control and HPACK; this class does gRPC over it (request header checks,
// length-prefixed messages, grpc-encoding, grpc-timeout, status trailers) and hands each
// stream to a NativeCall and its method's handler.
//
// Output is coalesced (H2Socket): whatever the calls send during one turn of the loop
// (the answers of a whole read, completions posted from instance threads) goes out in
// ONE write per turn.
//
// Back-pressure, both ways, by HTTP/2 flow control only (reads never stop, so a client
// waiting for a WINDOW_UPDATE or a SETTINGS ack is never stuck): the bytes a client
// sends are given back to its windows only once they are handled, and not while the
// stream (NativeCall::HoldWindow: too much work in flight; more than 1 MiB of its
// answers unsent) or the connection (more than 16 MiB of answers unsent, until under
// 4 MiB) is backed up. A client that sends but never reads therefore stops being able
// to send after its windows (16 MiB a stream, 32 MiB a connection) are used up, and what
// the server holds for it stays bounded.
// Thread-safety: everything runs on the connection's loop (see NativeCall::Post).
class GrpcConnection final : public H2Socket {
 public:
  // `options` and `router` outlive the connection; `live` counts open connections.
  GrpcConnection(Socket socket, boost::asio::io_context* loop, const ConnectionOptions* options, MethodRouter* router,
                 std::atomic<int>* live);
  ~GrpcConnection() override;

  // Sends the server's SETTINGS and starts reading. On the loop.
  void Start();
  // Server shutdown: GOAWAY now; the connection closes once its streams are done. On
  // the loop.
  void Shutdown();
  // Closes the socket now; open streams are cancelled. On the loop.
  void Abort();

  // A call has bytes to send: ScheduleFlush (drain and write at the end of this turn).

 private:
  friend class NativeCall;
  std::shared_ptr<GrpcConnection> Self() { return std::static_pointer_cast<GrpcConnection>(shared_from_this()); }
  void OnReadDone() override;
  void OnFlushIdle() override { MaybeClose(); }
  bool OnDrained() override;  // back-pressure: gives back windows the drain freed
  void OnBroken(std::string_view) override { CloseSocket(); }
  void OnProtocolError(int error) override;
  void CloseSocket();
  void MaybeClose();
  NativeCall* FindCall(int32_t stream_id);
  // Answer bytes not yet written to the socket: the calls' unsent ones and the
  // connection's write buffers.
  size_t Backlog() const;
  void CheckBacklog();  // sets backlogged_ above the high mark
  // grpc-timeout deadlines: one timer per connection, armed at the earliest, instead of
  // a timer per call (whose arming and cancelling would cost syscalls on every call).
  void AddDeadline(NativeCall* call, std::chrono::steady_clock::time_point at);
  void RemoveDeadline(NativeCall* call);
  void ArmDeadlineTimer();
  void ExpireDeadlines();

  // Request handling, from the nghttp2 callbacks.
  void BeginCall(int32_t stream_id);
  void StartCall(NativeCall* call);
  void OnData(NativeCall* call, std::string_view chunk);
  void OnHalfClose(NativeCall* call);
  void OnStreamClose(int32_t stream_id);
  void StartResponse(NativeCall* call, bool trailers_only);
  static ssize_t ReadResponse(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags,
                              nghttp2_data_source* source, void* user_data);

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t flags, void* user_data);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data, size_t len,
                         void* user_data);
  static int OnStreamCloseCb(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user_data);

  const ConnectionOptions* options_;
  MethodRouter* router_;
  std::atomic<int>* live_;
  std::unordered_map<int32_t, std::shared_ptr<NativeCall>> calls_;
  std::multimap<std::chrono::steady_clock::time_point, NativeCall*> deadlines_;
  boost::asio::steady_timer deadline_timer_;
  std::chrono::steady_clock::time_point timer_at_ = std::chrono::steady_clock::time_point::max();
  size_t unsent_ = 0;              // the calls' answer bytes nghttp2 has not taken yet
  bool backlogged_ = false;        // Backlog() passed the high mark and is not under the low one yet
  std::vector<int32_t> released_;  // streams that may give their windows back after the drain
  bool shutting_down_ = false;
};

}  // namespace ferry::frontend::grpc_native
