#include "monitoring/alert_loop.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

#include "monitoring/http_post.h"

namespace ferry::monitoring {
namespace {

TEST(ExpositionTest, ReadsWhatAScrapeReads) {
  const auto s = ParseExposition(
      "# HELP ferry_x a counter\n"
      "# TYPE ferry_x counter\n"
      "ferry_x{model=\"a\",reason=\"say \\\"hi\\\"\\\\\"} 3\n"
      "ferry_y 2.5e-3\n"
      "h_bucket{le=\"+Inf\"} 7 1700000000000\n"
      "g NaN\n"
      "broken{a=\"x\" 1\n"
      "\n");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].name, "ferry_x");
  EXPECT_EQ(s[0].labels.at("model"), "a");
  EXPECT_EQ(s[0].labels.at("reason"), "say \"hi\"\\");
  EXPECT_DOUBLE_EQ(s[0].value, 3);
  EXPECT_DOUBLE_EQ(s[1].value, 2.5e-3);
  EXPECT_EQ(s[2].labels.at("le"), "+Inf");
  EXPECT_DOUBLE_EQ(s[2].value, 7);
  EXPECT_TRUE(std::isnan(s[3].value));
}

TEST(HttpPostTest, RefusedAndBadUrlsAreClearErrors) {
  Status bad = HttpPostJson("https://example.invalid/x", "{}", std::chrono::milliseconds(200));
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("must start with http://"), std::string::npos);
  // Port 1 on loopback: nothing listens there.
  Status refused = HttpPostJson("http://127.0.0.1:1/api/v2/alerts", "[]", std::chrono::milliseconds(500));
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.message().find("POST http://127.0.0.1:1/api/v2/alerts"), std::string::npos) << refused.message();
}

// A loopback listener that accepts connections (the kernel's backlog) and never answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 4) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(HttpPostTest, AReceiverThatNeverAnswersTimesOut) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  const auto t0 = std::chrono::steady_clock::now();
  Status s = HttpPostJson("http://127.0.0.1:" + std::to_string(silent.port()) + "/hook", "{}",
                          std::chrono::milliseconds(300));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("receive"), std::string::npos) << s.message();
  // Bounded by the timeout (generously: a loaded machine), not by the peer.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

TEST(AlertLoopTest, NeedsATargetAndReadableRules) {
  AlertLoopOptions o;
  o.rules_file = "/nonexistent/rules.yaml";
  auto none = AlertLoop::Create(o, [] { return std::string(); });
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("Alertmanager URL or a webhook URL"), std::string::npos);
  o.notifier.webhook_url = "http://127.0.0.1:1/";
  auto missing = AlertLoop::Create(o, [] { return std::string(); });
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read the alert rules file '/nonexistent/rules.yaml'"),
            std::string::npos);
}

}  // namespace
}  // namespace ferry::monitoring
