#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>
#include <string_view>

#include "frontend/http/event_loops.h"

namespace ferry::frontend::grpc_native {

// The callbacks a side of the transport gives nghttp2 (begin may be null).
struct H2Callbacks {
  nghttp2_on_begin_headers_callback begin = nullptr;
  nghttp2_on_header_callback header = nullptr;
  nghttp2_on_frame_recv_callback frame = nullptr;
  nghttp2_on_data_chunk_recv_callback data = nullptr;
  nghttp2_on_stream_close_callback close = nullptr;
};
// A callbacks table for nghttp2_session_*_new; the caller keeps it (one static per side).
nghttp2_session_callbacks* NewCallbacks(const H2Callbacks& callbacks);

// The socket side of one nghttp2 session on an event loop, what both ends of the native
// transport share (GrpcConnection, a client's connection; the engine's
// GrpcUpstreamSession, a connection to a replica): what is read is fed to the session,
// and output is coalesced: whatever the session has to send after a turn of the loop is
// drained into one buffer and written with ONE write; while a write is in flight the
// next turn's bytes wait for it. The subclass makes `session_` (with itself as user
// data) and decides what a failure does.
// Thread-safety: everything on the loop.
class H2Socket : public std::enable_shared_from_this<H2Socket> {
 public:
  using Socket = http::EventLoops::Socket;
  H2Socket(Socket socket, boost::asio::io_context* loop);
  virtual ~H2Socket();  // deletes session_

  boost::asio::io_context* loop() const { return loop_; }
  // Drain and write at the end of this loop turn (at once after a read being parsed).
  void ScheduleFlush();

 protected:
  // Starts one read; its bytes go to the session, then Flush, then OnReadDone.
  void Read();
  // Drains the session into one write, unless one is in flight or !CanWrite().
  void Flush();
  // Shuts down and closes the socket; `closed_` from then on.
  void ShutSocket();
  bool write_in_flight() const { return write_in_flight_; }
  // Output bytes drained from the session and not yet written: the next write's and the
  // one in flight.
  size_t buffered() const { return out_.size() + writing_.size(); }

  // What comes next after a read was handled (default: read again).
  virtual void OnReadDone() { Read(); }
  // Flush found nothing to send and no write in flight.
  virtual void OnFlushIdle() {}
  // Flush has drained everything the session had; true when the subclass gave it more
  // to send (window updates, say), which then goes in the same write.
  virtual bool OnDrained() { return false; }
  // The socket failed (read or write error, peer closed) or nghttp2 could not produce
  // output: the connection is over.
  virtual void OnBroken(std::string_view why) = 0;
  // The peer broke HTTP/2 (nghttp2_session_mem_recv failed with `error`).
  virtual void OnProtocolError(int error) = 0;
  // Whether the socket may be written yet (a client's: connected).
  virtual bool CanWrite() const { return true; }

  Socket socket_;
  boost::asio::io_context* const loop_;
  nghttp2_session* session_ = nullptr;
  bool closed_ = false;
  bool in_recv_ = false;  // inside nghttp2_session_mem_recv: flush after it

 private:
  std::string in_;             // the read buffer
  std::string out_, writing_;  // bytes for the next write; the write in flight
  bool write_in_flight_ = false;
  bool flush_scheduled_ = false;
};

}  // namespace ferry::frontend::grpc_native
