#include "frontend/http/write_now.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <string>
#include <thread>

namespace ferry::frontend::http {
namespace {

std::string ReadAll(int fd, size_t n) {
  std::string got;
  char buf[65536];
  while (got.size() < n) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r <= 0) break;
    got.append(buf, static_cast<size_t>(r));
  }
  return got;
}

TEST(WriteNowTest, ASmallWriteGoesWholeAtOnceInOrder) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  boost::system::error_code ec;
  EXPECT_EQ(WriteNow(sv[0], "head:", "body", &ec), 9u);
  EXPECT_FALSE(ec);
  EXPECT_EQ(ReadAll(sv[1], 9), "head:body");
  EXPECT_EQ(WriteNow(sv[0], "", "only-body", &ec), 9u);
  EXPECT_EQ(ReadAll(sv[1], 9), "only-body");
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(WriteNowTest, AFullSocketTakesPartOfItWithoutAnError) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const std::string big(8 << 20, 'x');  // far more than a socket buffer holds
  boost::system::error_code ec;
  const size_t n = WriteNow(sv[0], "h", big, &ec);
  EXPECT_FALSE(ec);
  EXPECT_GT(n, 0u);
  EXPECT_LT(n, big.size() + 1);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(WriteNowTest, AClosedPeerIsAnErrorNotASignal) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ::close(sv[1]);
  boost::system::error_code ec;
  EXPECT_EQ(WriteNow(sv[0], "a", "b", &ec), 0u);  // MSG_NOSIGNAL: EPIPE, the process lives
  EXPECT_EQ(ec.value(), EPIPE);
  ::close(sv[0]);
}

TEST(WriteNowTest, WhatTheSocketCannotTakeNowIsWrittenByTheLoopInOrder) {
  boost::asio::io_context loop;
  boost::asio::local::stream_protocol::socket a(loop), b(loop);
  boost::asio::local::connect_pair(a, b);
  std::string head = "HEAD|", body(4 << 20, 'y');
  body.back() = 'z';
  int calls = 0;
  bool now = true;
  boost::system::error_code result;
  WriteNowOrLater(a, head, body, [&](boost::system::error_code ec, bool at_once) {
    ++calls;
    now = at_once;
    result = ec;
  });
  EXPECT_EQ(calls, 0);  // the rest is pending on the loop
  std::string got;
  std::thread reader([&] { got = ReadAll(b.native_handle(), head.size() + body.size()); });
  loop.run();
  reader.join();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(now);
  EXPECT_FALSE(result);
  EXPECT_EQ(got, head + body);

  int small_calls = 0;
  WriteNowOrLater(a, std::string_view("x"), std::string_view("y"), [&](boost::system::error_code ec, bool at_once) {
    ++small_calls;
    EXPECT_FALSE(ec);
    EXPECT_TRUE(at_once);  // called within the call: no posted completion
  });
  EXPECT_EQ(small_calls, 1);
  EXPECT_EQ(ReadAll(b.native_handle(), 2), "xy");
}

}  // namespace
}  // namespace ferry::frontend::http
