#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

// Writing bytes at once, before falling back to an asynchronous write. asio completes
// even a write that succeeded on its first try through a posted handler, and a posted
// handler makes the event loop poll epoll once more (epoll_wait with no timeout) before
// it runs. The engine's gateway writes each forwarded request with WriteNowOrLater: a
// request almost always fits in the socket's send buffer, so the gateway goes straight
// on to wait for the replica's answer. (Http1Server keeps asio's write: after an answer
// the next read there is speculative, and right after a write it would only fail.)
// Thread-safety: pure functions of the socket; the caller owns the socket's writes (no
// asynchronous write may be pending on it).
namespace ferry::frontend::http {

// Sends `a` then `b` on the connected socket `fd` without blocking (sendmsg with
// MSG_DONTWAIT and MSG_NOSIGNAL, repeated while the socket takes bytes). Returns how many
// bytes were written: all of them, fewer when the socket's buffer is full (then `*ec` is
// clear and the rest must be written asynchronously), or as many as went before an error
// (then `*ec` holds it, EPIPE and ECONNRESET included).
size_t WriteNow(int fd, std::string_view a, std::string_view b, boost::system::error_code* ec);

// Writes `a` then `b` on `socket`: what WriteNow takes at once, the rest with
// asio::async_write. Calls `done(ec, now)` once: `now` true when it is called from
// within this call (everything written, or an error), false from the loop later. `a`
// and `b` must stay valid until `done` runs. On the socket's loop.
template <typename Socket, typename Done>
void WriteNowOrLater(Socket& socket, std::string_view a, std::string_view b, Done&& done) {
  boost::system::error_code ec;
  const size_t n = WriteNow(socket.native_handle(), a, b, &ec);
  if (ec || n == a.size() + b.size()) return done(ec, true);
  std::array<boost::asio::const_buffer, 2> rest{boost::asio::buffer(a.data(), a.size()),
                                                boost::asio::buffer(b.data(), b.size())};
  if (n < a.size()) {
    rest[0] += n;
  } else {
    rest[0] = boost::asio::const_buffer();
    rest[1] += n - a.size();
  }
  boost::asio::async_write(socket, rest, [done = std::forward<Done>(done)](boost::system::error_code e, size_t) mutable {
    done(e, false);
  });
}

}  // namespace ferry::frontend::http
