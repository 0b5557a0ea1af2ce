#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "frontend/grpc/call_count_sink.h"
#include "protocol/compression.h"
#include "protocol/grpc/grpc_framing.h"

namespace ferry::frontend::grpc_native {

class GrpcConnection;
class NativeCall;

// What a method does with the events of one call. Every method runs on the call's
// connection loop; a handler that has slow work hands it to another thread and comes
// back with NativeCall::Post.
class CallHandler {
 public:
  virtual ~CallHandler() = default;
  // The request headers are complete (the call is valid and routed).
  virtual void OnStart(NativeCall*) {}
  // One whole request message (decompressed); `bytes` is valid during the call only.
  virtual void OnMessage(NativeCall* call, std::string_view bytes) = 0;
  // The client has sent its last message.
  virtual void OnHalfClose(NativeCall* call) = 0;
  // The stream is gone (answered, reset by the client, deadline, disconnect); nothing
  // more can be sent, and no other event follows.
  virtual void OnClose(NativeCall*) {}
  // After NativeCall::NotifyWhenDrained: the call's answers are no longer backed up.
  virtual void OnDrained(NativeCall*) {}
};

// One gRPC call: one HTTP/2 stream of a GrpcConnection. The connection owns it (and
// its handler) until the stream closes; a shared_ptr kept by pending work keeps the
// object, not the stream, alive.
// Thread-safety: everything runs on the connection's loop, except Post, and cancelled(),
// which any thread may call.
class NativeCall : public std::enable_shared_from_this<NativeCall> {
 public:
  NativeCall(GrpcConnection* connection, int32_t stream_id) : connection_(connection), stream_id_(stream_id) {}

  // The custom metadata (lower-case names), in arrival order; the headers the transport
  // itself reads (content-type, te, grpc-timeout, grpc-encoding, user-agent,
  // grpc-accept-encoding, ...) are not kept.
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  std::optional<std::string_view> Metadata(std::string_view name) const;

  // Sends one response message (the response headers first, on the first one). No-op
  // once the call is finished or closed.
  void SendMessage(std::string_view serialized);
  // The same for a message serialized straight into the stream's buffer.
  void SendProto(const google::protobuf::MessageLite& message);
  // Ends the call with `code` (a gRPC status code) and `message` (sent percent-encoded):
  // trailers after the messages sent, or a Trailers-Only answer when none was. The code
  // counts in the method's counter (also when the stream is already closed: nothing is
  // sent then). No-op once finished.
  void Finish(int code, std::string_view message = {});
  bool finished() const { return finished_ || closed_; }

  // Custom response metadata (lower-case names): sent with the response headers (before
  // the first message) or with the trailers. Headers added after the first message are
  // dropped. No-op once finished. On the loop.
  void AddInitialMetadata(std::string name, std::string value);
  void AddTrailingMetadata(std::string name, std::string value);

  // When the client's grpc-timeout runs out (then the call finishes DEADLINE_EXCEEDED);
  // nullopt without one, or once the call is finished.
  std::optional<std::chrono::steady_clock::time_point> deadline() const;

  // Set when the client reset the stream, its deadline passed or its connection went;
  // shared so queued work can poll it from any thread.
  const std::shared_ptr<std::atomic<bool>>& cancelled() const { return cancelled_; }

  // Runs `fn` on the call's loop (at once when called there), unless the connection
  // is gone by then. From any thread.
  void Post(std::function<void()> fn);
  // The loop the call runs on.
  boost::asio::io_context* loop() const;

  // Back-pressure: while held, the bytes the client sends on this stream are not given
  // back to its HTTP/2 flow-control window, so once the window (16 MiB) is full the
  // client stops sending; releasing gives them back unless the stream's or the
  // connection's unsent answers hold it too (see GrpcConnection). On the loop.
  void HoldWindow(bool hold);

  // Whether the answers sent are backed up: more than 1 MiB of this stream's not taken
  // by the client yet, or the connection's unsent answers over its high mark (see
  // GrpcConnection). A handler relaying answers from elsewhere stops taking them then.
  // On the loop.
  bool Backlogged() const;
  // The handler's OnDrained runs once, on the loop, when Backlogged() turns false
  // (checked as the connection's output drains); never once the stream is closed.
  void NotifyWhenDrained() { drain_wanted_ = true; }

 private:
  friend class GrpcConnection;
  bool TooLarge(size_t size);  // finishes with RESOURCE_EXHAUSTED when it is
  void Submitted();            // out_ grew or the call finished: start the response or resume its data
  void Queued(size_t bytes);   // `bytes` were appended to out_: count them, then Submitted()
  size_t Unsent() const;       // out_'s bytes nghttp2 has not taken yet
  bool Holding() const;        // the window is not given back now
  void GiveBackWindow();       // gives back what was held, unless still Holding()
  void CheckDrained();         // OnDrained, if wanted and no longer Backlogged()

  GrpcConnection* connection_;  // not owned; outlives the call's stream
  std::weak_ptr<GrpcConnection> connection_weak_;  // for Post from other threads
  const int32_t stream_id_;
  std::unique_ptr<CallHandler> handler_;
  grpc::CallCountSink* counter_ = nullptr;
  size_t max_message_bytes_ = 0;

  // Request side.
  bool routed_ = false;             // :path seen: handler_ and counter_ are set
  bool post_ = false;               // :method is POST
  bool grpc_content_type_ = false;  // content-type is application/grpc[+proto|;...]
  std::string timeout_, encoding_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::optional<protocol::grpc_wire::MessageDeframer> deframer_;
  protocol::Encoding request_encoding_ = protocol::Encoding::kIdentity;
  // Its entry in the connection's deadlines, while it has a grpc-timeout and is open.
  std::optional<std::multimap<std::chrono::steady_clock::time_point, NativeCall*>::iterator> deadline_;
  bool started_ = false;
  bool hold_window_ = false;
  size_t unconsumed_ = 0;  // DATA bytes received while held, not yet given back
  bool drain_wanted_ = false;  // NotifyWhenDrained

  // Response side: bytes submitted to the stream, not yet taken by nghttp2.
  std::string out_;
  size_t out_offset_ = 0;
  bool headers_sent_ = false;
  bool deferred_ = false;   // the data source said "no data yet"; resume when some comes
  bool finished_ = false;   // Finish was called
  bool closed_ = false;     // the stream is closed
  int status_code_ = 0;
  std::string status_message_;  // percent-encoded
  std::vector<std::pair<std::string, std::string>> initial_metadata_, trailing_metadata_;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace ferry::frontend::grpc_native
