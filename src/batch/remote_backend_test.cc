#include "batch/remote_backend.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>

namespace ferry::batch {
namespace {

std::string CreateError(const std::string& url) {
  RemoteOptions o;
  o.url = url;
  auto b = RemoteV2Backend::Create(o);
  return b.ok() ? std::string() : b.status().message();
}

TEST(RemoteV2Backend, UrlsOtherThanHttpHostPortAreNamed) {
  EXPECT_NE(CreateError("https://h:1").find("must be http://HOST:PORT (REST) or grpc://HOST:PORT (no TLS)"),
            std::string::npos);
  EXPECT_NE(CreateError("grpc://h:1/x").find("must be grpc://HOST:PORT, with no path"), std::string::npos);
  EXPECT_EQ(CreateError("grpc://127.0.0.1:8001"), "");
  EXPECT_NE(CreateError("http://h").find("must be http://HOST:PORT, with no path"), std::string::npos);
  EXPECT_NE(CreateError("http://h:1/v2").find("must be http://HOST:PORT, with no path"), std::string::npos);
  EXPECT_NE(CreateError("http://h:x").find("must be http://HOST:PORT"), std::string::npos);
  EXPECT_EQ(CreateError("http://127.0.0.1:8000/"), "");
}

TEST(RemoteV2Backend, AnEndpointThatNeverAnswersIsUnavailableAfterTheRetries) {
  // A port nothing listens on: bind one, learn its number, close it.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = a.local_endpoint().port();
  a.close();
  RemoteOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port);
  o.retries = 2;
  o.backoff_initial = std::chrono::milliseconds(1);
  o.backoff_max = std::chrono::milliseconds(2);
  auto b = RemoteV2Backend::Create(o);
  ASSERT_TRUE(b.ok()) << b.status().message();
  auto r = (*b)->Resolve("m", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("(after 3 tries)"), std::string::npos) << r.status().message();
  EXPECT_TRUE((*b)->StopsTheJob(r.status()));
}

}  // namespace
}  // namespace ferry::batch
