#include "frontend/grpc_native/h2_socket.h"

#include <boost/asio.hpp>

namespace ferry::frontend::grpc_native {
namespace asio = boost::asio;

namespace {
constexpr size_t kReadBuffer = 64 * 1024;
}  // namespace

nghttp2_session_callbacks* NewCallbacks(const H2Callbacks& c) {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  if (c.begin) nghttp2_session_callbacks_set_on_begin_headers_callback(cb, c.begin);
  nghttp2_session_callbacks_set_on_header_callback(cb, c.header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c.frame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c.data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, c.close);
  return cb;
}

H2Socket::H2Socket(Socket socket, asio::io_context* loop) : socket_(std::move(socket)), loop_(loop) {
  in_.resize(kReadBuffer);
}

H2Socket::~H2Socket() { nghttp2_session_del(session_); }

void H2Socket::ScheduleFlush() {
  if (in_recv_ || flush_scheduled_ || closed_) return;  // a read flushes after parsing
  flush_scheduled_ = true;
  asio::post(*loop_, [self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->Flush();
  });
}

void H2Socket::Read() {
  socket_.async_read_some(asio::buffer(in_.data(), in_.size()),
                          [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                            if (self->closed_) return;
                            if (ec) return self->OnBroken(ec == asio::error::eof ? "the peer closed it" : ec.message());
                            self->in_recv_ = true;
                            const ssize_t rv = nghttp2_session_mem_recv(
                                self->session_, reinterpret_cast<const uint8_t*>(self->in_.data()), n);
                            self->in_recv_ = false;
                            if (rv < 0) self->OnProtocolError(static_cast<int>(rv));
                            self->Flush();
                            if (!self->closed_) self->OnReadDone();
                          });
}

void H2Socket::Flush() {
  if (closed_ || write_in_flight_ || !CanWrite()) return;
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return OnBroken(std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(n)));
    if (n == 0) {
      if (OnDrained()) continue;
      break;
    }
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  if (out_.empty()) return OnFlushIdle();
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  asio::async_write(socket_, asio::buffer(writing_), [self = shared_from_this()](boost::system::error_code ec, size_t) {
    self->write_in_flight_ = false;
    if (ec) return self->OnBroken(ec.message());
    self->writing_.clear();
    self->Flush();
  });
}

void H2Socket::ShutSocket() {
  closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace ferry::frontend::grpc_native
