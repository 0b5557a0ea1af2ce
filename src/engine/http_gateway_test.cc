#include "engine/http_gateway.h"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <boost/asio.hpp>

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "engine/readiness_probe.h"
#include "frontend/http/http_server.h"

namespace ferry::engine {
namespace {
using namespace std::chrono_literals;
namespace fh = frontend::http;

// A stand-in replica: answers /v2/models/m/infer with the request body and a header, or
// holds the answer until released (to keep a request in flight).
class Upstream {
 public:
  explicit Upstream(bool hold = false) : hold_(hold) {
    fh::HttpServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.threads = 1;
    server_ = std::move(fh::HttpServer::Create(o, [this](fh::Request&& req, fh::Responder respond, fh::ClientGone) {
                          fh::Response r{boost::beast::http::status::ok, 11};
                          r.set("X-Replica", "up");
                          r.set(boost::beast::http::field::connection, "keep-alive");
                          r.body() = "echo:" + req.body();
                          std::unique_lock lock(mu_);
                          ++received_;
                          cv_.notify_all();
                          if (!hold_) return respond(std::move(r));
                          held_.emplace_back(std::move(respond), std::move(r));
                        })).value();
    EXPECT_TRUE(server_->Start().ok());
  }
  ~Upstream() {
    Release();
    server_->Stop(1000);
  }
  uint16_t port() const { return server_->port(); }
  int received() {
    std::lock_guard lock(mu_);
    return received_;
  }
  void WaitReceived(int n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 5s, [&] { return received_ >= n; });
  }
  void Release() {
    std::vector<std::pair<fh::Responder, fh::Response>> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
      hold_ = false;
    }
    for (auto& [respond, r] : held) respond(std::move(r));
  }

 private:
  std::unique_ptr<fh::HttpServer> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_;
  int received_ = 0;
  std::vector<std::pair<fh::Responder, fh::Response>> held_;
};

// A port nothing listens on: bound, never listening, then closed.
uint16_t DeadPort() {
  Upstream probe;
  uint16_t p = probe.port();
  return p;  // the server is stopped when `probe` goes
}

class GatewayTest : public ::testing::Test {
 protected:
  void Route(std::vector<std::shared_ptr<ReplicaEndpoint>> replicas, int max_in_flight = 100, int min = 1) {
    auto table = std::make_shared<RouteTable>();
    auto d = std::make_shared<DeploymentRoute>();
    d->name = "dep";
    d->min_replicas = min;
    d->max_in_flight = max_in_flight;
    d->cold_start_timeout_ms = 200;
    d->load = std::make_shared<DeploymentLoad>();
    d->revisions.push_back({"v1", 100, std::move(replicas), std::make_shared<RevisionLoad>()});
    table->by_model["m"] = d;
    table->deployments.push_back(d);
    router_.Publish(table);
  }
  // Publishes the route table again with its deployment changed by `change`.
  std::shared_ptr<DeploymentRoute> ChangeDeployment(const std::function<void(DeploymentRoute&)>& change) {
    auto table = std::make_shared<RouteTable>(*router_.Snapshot());
    auto d = std::make_shared<DeploymentRoute>(*table->deployments[0]);
    change(*d);
    table->by_model["m"] = d;
    table->deployments[0] = d;
    router_.Publish(table);
    return d;
  }
  void StartGateway() {
    HttpGatewayOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.threads = 1;
    gateway_ = std::move(HttpGateway::Create(o, &router_)).value();
    ASSERT_TRUE(gateway_->Start().ok());
  }
  void TearDown() override {
    if (gateway_) gateway_->Stop(1000);
  }
  static std::shared_ptr<ReplicaEndpoint> Ep(const std::string& id, uint16_t port, int outstanding = 0) {
    auto e = std::make_shared<ReplicaEndpoint>(id, port);
    e->routable = true;
    e->outstanding = outstanding;
    return e;
  }
  HttpReply Post(const std::string& path, const std::string& body) {
    auto r = LoopbackHttp(gateway_->port(), "POST", path, body, 5000ms);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : HttpReply{};
  }

  Router router_;
  std::unique_ptr<HttpGateway> gateway_;
};

TEST_F(GatewayTest, ForwardsBodyAndHeadersAndAnswersUnknownModelsWith404) {
  Upstream up;
  Route({Ep("a", up.port())});
  StartGateway();
  auto ok = LoopbackHttp(gateway_->port(), "POST", "/v2/models/m/infer", "payload", 5000ms);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "echo:payload");
  EXPECT_NE(ok->head.find("X-Replica: up"), std::string::npos) << ok->head;
  EXPECT_NE(ok->head.find("Ferry-Revision: v1"), std::string::npos) << ok->head;
  EXPECT_EQ(ok->head.find("keep-alive"), std::string::npos) << "hop-by-hop fields stay on their hop";
  auto head = LoopbackHttp(gateway_->port(), "HEAD", "/v2/models/m/ready", "", 5000ms);
  ASSERT_TRUE(head.ok()) << head.status().message();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(Post("/v2/models/m/infer", "after-head").body, "echo:after-head") << "no stray bytes after HEAD";
  auto missing = Post("/v2/models/nope/infer", "{}");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("Request for unknown model: 'nope' is not found"), std::string::npos);
  EXPECT_EQ(LoopbackHttp(gateway_->port(), "GET", "/v2/health/ready", "", 1000ms)->status, 200);
  EXPECT_EQ(Post("/v2/repository/index", "{}").body, R"([{"name":"m","state":"READY"}])");
}

TEST_F(GatewayTest, LargeBodiesGoBothWaysWhole) {
  Upstream up;
  Route({Ep("a", up.port())});
  StartGateway();
  // Larger than every buffer's first size, so both sides grow theirs mid-message.
  std::string big(3 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  for (int i = 0; i < 2; ++i) {
    HttpReply r = Post("/v2/models/m/infer", big);
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.body == "echo:" + big) << r.body.size();
    EXPECT_NE(r.head.find("X-Replica: up\r\n"), std::string::npos) << r.head.substr(0, 300);
    EXPECT_NE(r.head.find("Ferry-Revision: v1\r\n"), std::string::npos) << r.head.substr(0, 300);
  }
}

TEST_F(GatewayTest, AFailureBeforeAnyResponseByteIsRetriedOnAnotherReplica) {
  Upstream up;
  // The live replica looks busier, so every request tries the dead one first.
  Route({Ep("dead", DeadPort()), Ep("live", up.port(), /*outstanding=*/1000)});
  StartGateway();
  for (int i = 0; i < 10; ++i) {
    HttpReply r = Post("/v2/models/m/infer", std::to_string(i));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "echo:" + std::to_string(i));
  }
  EXPECT_EQ(gateway_->counters().retries, 10u);
  EXPECT_EQ(gateway_->counters().upstream_errors, 0u);
}

TEST_F(GatewayTest, OnlyOneRetry) {
  Route({Ep("dead1", DeadPort()), Ep("dead2", DeadPort())});
  StartGateway();
  HttpReply r = Post("/v2/models/m/infer", "x");
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("failed (connect)"), std::string::npos) << r.body;
  EXPECT_EQ(gateway_->counters().retries, 1u);
}

TEST_F(GatewayTest, OverTheConcurrencyLimitIs503WithRetryAfter) {
  Upstream up(/*hold=*/true);
  Route({Ep("a", up.port())}, /*max_in_flight=*/1);
  StartGateway();
  auto first = std::async(std::launch::async, [&] { return Post("/v2/models/m/infer", "first"); });
  up.WaitReceived(1);
  auto second = LoopbackHttp(gateway_->port(), "POST", "/v2/models/m/infer", "second", 5000ms);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, 503);
  EXPECT_NE(second->body.find("gateway.max_in_flight"), std::string::npos) << second->body;
  EXPECT_NE(second->head.find("Retry-After: 1"), std::string::npos) << second->head;
  up.Release();
  EXPECT_EQ(first.get().status, 200);
  EXPECT_EQ(Post("/v2/models/m/infer", "third").status, 200) << "the slot is free again";
}

TEST_F(GatewayTest, AReplicaThatDoesNotAnswerWithinTheTimeoutIs504AndNotRetried) {
  Upstream up(/*hold=*/true);
  Upstream other;
  Route({Ep("held", up.port()), Ep("other", other.port(), /*outstanding=*/1000)});
  ChangeDeployment([](DeploymentRoute& d) { d.request_timeout_ms = 300; });
  StartGateway();
  const auto t0 = std::chrono::steady_clock::now();
  HttpReply r = Post("/v2/models/m/infer", "x");
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_NE(r.body.find("replica held did not answer within 300 ms"), std::string::npos) << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s) << "the deadline ended the wait";
  EXPECT_EQ(gateway_->counters().retries, 0u) << "a timeout is not retried: the replica may be running it";
  EXPECT_EQ(other.received(), 0);
  up.Release();
  EXPECT_EQ(Post("/v2/models/m/infer", "after").status, 200) << "the gateway serves on";
}

TEST_F(GatewayTest, NoReadyReplicaWaitsThenAnswers503WithRetryAfter) {
  auto starting = Ep("starting", DeadPort());
  starting->routable = false;
  Route({starting});
  StartGateway();
  EXPECT_EQ(LoopbackHttp(gateway_->port(), "GET", "/v2/health/ready", "", 1000ms)->status, 503);
  HttpReply r = Post("/v2/models/m/infer", "x");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("gateway.cold_start_timeout"), std::string::npos) << r.body;
  EXPECT_NE(r.head.find("Retry-After: 1"), std::string::npos) << r.head;
}

TEST_F(GatewayTest, AClientThatLeavesWhileWaitingFreesItsPlace) {
  auto starting = Ep("starting", DeadPort());
  starting->routable = false;
  Route({starting});
  // A long cold-start wait: only the client's leaving can end it early.
  auto d = ChangeDeployment([](DeploymentRoute& d) { d.cold_start_timeout_ms = 60000; });
  StartGateway();
  {
    auto gone = std::async(std::launch::async, [&] {
      return LoopbackHttp(gateway_->port(), "POST", "/v2/models/m/infer", "x", 300ms);  // gives up after 300 ms
    });
    EXPECT_FALSE(gone.get().ok());
  }
  auto end = std::chrono::steady_clock::now() + 10s;
  while (d->load->waiting.load() != 0 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(d->load->waiting.load(), 0) << "the abandoned request no longer waits";
  EXPECT_EQ(d->load->in_flight.load(), 0);
}

TEST_F(GatewayTest, AWaitingRequestIsServedByAReplicaThatBecomesReady) {
  Upstream up;
  auto later = Ep("later", up.port());
  later->routable = false;
  Route({later});
  StartGateway();
  auto waiting = std::async(std::launch::async, [&] { return Post("/v2/models/m/infer", "held"); });
  std::this_thread::sleep_for(50ms);  // not a pass condition: the request is held either way
  later->routable = true;
  HttpReply r = waiting.get();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "echo:held");
}

// Sends `bytes` on one connection to the gateway and returns everything it answers
// until it closes the connection or `quiet` passes without a byte.
std::string RawExchange(uint16_t port, const std::string& bytes, std::chrono::milliseconds quiet = 1000ms) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s(ioc);
  s.connect({boost::asio::ip::address_v4::loopback(), port});
  boost::asio::write(s, boost::asio::buffer(bytes));
  std::string out;
  timeval tv{0, static_cast<suseconds_t>(quiet.count() * 1000)};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

size_t Count(const std::string& in, const std::string& what) {
  size_t n = 0;
  for (size_t p = in.find(what); p != std::string::npos; p = in.find(what, p + 1)) ++n;
  return n;
}

TEST_F(GatewayTest, FramesPipelinedChunkedAndHttp10RequestsAndAnswersInOrder) {
  Upstream up;
  Route({Ep("a", up.port())});
  StartGateway();
  // Two requests in one write, the second chunked (with an extension and a trailer),
  // then an HTTP/1.0 request without keep-alive: three answers, in order, then close.
  const std::string out = RawExchange(
      gateway_->port(),
      "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
      "POST /v2/models/m/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\ntwo\r\n1\r\n!\r\n0\r\nT: x\r\n\r\n"
      "POST /v2/models/m/infer HTTP/1.0\r\nContent-Length: 5\r\n\r\nthree");
  const size_t one = out.find("echo:one"), two = out.find("echo:two!"), three = out.find("echo:three");
  ASSERT_NE(one, std::string::npos) << out;
  ASSERT_NE(two, std::string::npos) << out;
  ASSERT_NE(three, std::string::npos) << out;
  EXPECT_LT(one, two);
  EXPECT_LT(two, three);
  EXPECT_EQ(Count(out, "HTTP/1.1 200 OK\r\n"), 2u) << out;
  EXPECT_EQ(Count(out, "HTTP/1.0 200 OK\r\n"), 1u) << out;
  EXPECT_NE(out.find("Content-Length: 9\r\n"), std::string::npos) << "the chunked body went upstream whole: " << out;
  EXPECT_EQ(Count(out, "Connection: close\r\n"), 1u) << "the HTTP/1.0 answer closes: " << out;
}

TEST_F(GatewayTest, ExpectContinueGetsA100BeforeTheBody) {
  Upstream up;
  Route({Ep("a", up.port())});
  StartGateway();
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s(ioc);
  s.connect({boost::asio::ip::address_v4::loopback(), gateway_->port()});
  boost::asio::write(s, boost::asio::buffer(std::string(
                            "POST /v2/models/m/infer HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")));
  std::string got(25, '\0');
  boost::asio::read(s, boost::asio::buffer(got.data(), got.size()));
  EXPECT_EQ(got, "HTTP/1.1 100 Continue\r\n\r\n");
  boost::asio::write(s, boost::asio::buffer(std::string("body")));
  boost::asio::streambuf answer;
  boost::system::error_code ec;
  boost::asio::read_until(s, answer, "echo:body", ec);
  EXPECT_FALSE(ec) << ec.message();
}

TEST_F(GatewayTest, HostileRequestsGetPreciseErrorsAndTheConnectionCloses) {
  Upstream up;
  Route({Ep("a", up.port())});
  HttpGatewayOptions o;
  o.address = "127.0.0.1";
  o.port = 0;
  o.threads = 1;
  o.max_body_bytes = 1000;
  gateway_ = std::move(HttpGateway::Create(o, &router_)).value();
  ASSERT_TRUE(gateway_->Start().ok());
  const std::pair<std::string, std::string> cases[] = {
      {"POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", "HTTP/1.1 400"},
      {"POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 400"},
      {"POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", "HTTP/1.1 413"},
      {"POST /v2/models/m/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3E9\r\n", "HTTP/1.1 413"},
      {"POST /v2/models/m/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"},
      {"GET / HTTP/1.1\r\nX: " + std::string(70 * 1024, 'a'), "HTTP/1.1 431"},
      {"GARBAGE\r\n\r\n", "malformed request line"},
  };
  for (const auto& [in, want] : cases) {
    // A request that would follow on the same connection is not answered: it closed.
    const std::string out = RawExchange(gateway_->port(), in + "GET /v2/health/live HTTP/1.1\r\n\r\n");
    EXPECT_NE(out.find(want), std::string::npos) << in.substr(0, 80) << " -> " << out;
    EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
    EXPECT_EQ(out.find("live"), std::string::npos) << out;
  }
  EXPECT_EQ(up.received(), 0) << "nothing malformed went to the replica";
  // A truncated request followed by the client's close: no answer, no crash, and the
  // gateway still serves.
  EXPECT_EQ(RawExchange(gateway_->port(), "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 200ms),
            "");
  EXPECT_EQ(Post("/v2/models/m/infer", "fine").body, "echo:fine");
}

}  // namespace
}  // namespace ferry::engine
