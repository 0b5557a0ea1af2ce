#include "frontend/http/write_now.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

namespace ferry::frontend::http {

size_t WriteNow(int fd, std::string_view a, std::string_view b, boost::system::error_code* ec) {
  ec->clear();
  size_t done = 0;
  const size_t total = a.size() + b.size();
  while (done < total) {
    iovec iov[2];
    int n = 0;
    if (done < a.size()) iov[n++] = {const_cast<char*>(a.data()) + done, a.size() - done};
    const size_t in_b = done < a.size() ? 0 : done - a.size();
    if (b.size() > in_b) iov[n++] = {const_cast<char*>(b.data()) + in_b, b.size() - in_b};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    const ssize_t sent = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent > 0) {
      done += static_cast<size_t>(sent);
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // the rest goes asynchronously
    *ec = boost::system::error_code(sent < 0 ? errno : EPIPE, boost::system::system_category());
    break;
  }
  return done;
}

}  // namespace ferry::frontend::http
