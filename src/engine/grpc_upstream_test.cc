#include "engine/grpc_upstream.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "engine/upstream_sessions.h"
#include "frontend/grpc_native/native_listener.h"

// GrpcUpstreamSession against the native transport's own server side (NativeListener,
// GrpcConnection) over a real loopback socket: the client's framing, metadata, status,
// deadline, multiplexing, cancellation and connection failures.
namespace ferry::engine {
namespace {
namespace asio = boost::asio;
using frontend::grpc_native::CallHandler;
using frontend::grpc_native::NativeCall;

// The server's methods: /t/Echo answers the request with the client's x-in metadata
// echoed and a trailer; /t/Fail answers code 9 with a message that needs escaping;
// /t/Hang never answers and counts the streams that closed unanswered.
struct Server final : frontend::grpc_native::MethodRouter {
  std::atomic<int> hung_closed{0};
  std::atomic<int64_t> last_deadline_ms{-1};

  class Echo final : public CallHandler {
   public:
    explicit Echo(Server* s) : s_(s) {}
    void OnMessage(NativeCall*, std::string_view bytes) override { request_.assign(bytes); }
    void OnHalfClose(NativeCall* call) override {
      auto d = call->deadline();
      s_->last_deadline_ms =
          d ? std::chrono::duration_cast<std::chrono::milliseconds>(*d - std::chrono::steady_clock::now()).count() : -1;
      call->AddInitialMetadata("x-echo", std::string(call->Metadata("x-in").value_or("none")));
      call->AddTrailingMetadata("x-trail", "t");
      call->SendMessage(request_);
      call->Finish(0);
    }

   private:
    Server* s_;
    std::string request_;
  };
  class Fail final : public CallHandler {
   public:
    void OnMessage(NativeCall*, std::string_view) override {}
    void OnHalfClose(NativeCall* call) override { call->Finish(9, "bad: 100% \xc3\xbc\nline"); }
  };
  class Hang final : public CallHandler {
   public:
    explicit Hang(Server* s) : s_(s) {}
    void OnMessage(NativeCall*, std::string_view) override {}
    void OnHalfClose(NativeCall*) override {}
    void OnClose(NativeCall* call) override {
      if (!call->finished() || call->cancelled()->load()) ++s_->hung_closed;
    }

   private:
    Server* s_;
  };

  frontend::grpc_native::Route Find(std::string_view path) override {
    if (path == "/t/Echo") return {std::make_unique<Echo>(this)};
    if (path == "/t/Fail") return {std::make_unique<Fail>()};
    return {std::make_unique<Hang>(this)};
  }
};

// Collects one call's events; they come on the client loop.
struct Observer final : UpstreamObserver {
  std::vector<std::string> messages;
  std::promise<UpstreamResult> done;
  void OnUpstreamMessage(std::string_view bytes, const GrpcMetadata&) override { messages.emplace_back(bytes); }
  void OnUpstreamClose(UpstreamResult r) override { done.set_value(std::move(r)); }
};

std::string Find(const GrpcMetadata& md, const std::string& key) {
  for (const auto& [k, v] : md)
    if (k == key) return v;
  return "(absent)";
}

class GrpcUpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(listener_.Start("127.0.0.1", 0).ok());
    client_thread_ = std::thread([this] { loop_.run(); });
  }
  void TearDown() override {
    OnLoop([this] {
      if (session_) session_->Close("test over");
      session_.reset();
    });
    work_.reset();
    client_thread_.join();
    listener_.Shutdown(0);
  }

  // Runs `fn` on the client loop and waits for it.
  template <typename F>
  void OnLoop(F fn) {
    std::promise<void> ran;
    asio::post(loop_, [&] {
      fn();
      ran.set_value();
    });
    ran.get_future().wait();
  }

  std::shared_ptr<GrpcUpstreamSession> Session(uint16_t port) {
    OnLoop([&] { session_ = GrpcUpstreamSession::Connect(&loop_, port); });
    return session_;
  }

  int32_t Call(Observer* o, std::string_view path, std::string message, GrpcMetadata md = {},
               std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
    int32_t id = -1;
    OnLoop([&] {
      id = session_->Start(o, path, md, timeout);
      session_->Send(id, message);
      session_->HalfClose(id);
    });
    return id;
  }

  static UpstreamResult Wait(Observer* o) {
    auto f = o->done.get_future();
    EXPECT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return f.get();
  }

  Server server_;
  frontend::grpc_native::ConnectionOptions options_;
  frontend::grpc_native::NativeListener listener_{1, "test-grpc", &options_, &server_};
  asio::io_context loop_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{loop_.get_executor()};
  std::thread client_thread_;
  std::shared_ptr<GrpcUpstreamSession> session_;
};

TEST_F(GrpcUpstreamTest, UnaryCallCarriesMessageMetadataDeadlineAndStatus) {
  Session(listener_.port());
  Observer o;
  Call(&o, "/t/Echo", "hello", {{"x-in", "abc"}}, std::chrono::seconds(5));
  UpstreamResult r = Wait(&o);
  EXPECT_EQ(r.code, 0) << r.message;
  EXPECT_TRUE(r.responded);
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0], "hello");
  EXPECT_EQ(Find(r.initial, "x-echo"), "abc");
  EXPECT_EQ(Find(r.trailing, "x-trail"), "t");
  EXPECT_GT(server_.last_deadline_ms.load(), 4000);
  EXPECT_LE(server_.last_deadline_ms.load(), 5000);
}

TEST_F(GrpcUpstreamTest, ErrorStatusMessageIsDecoded) {
  Session(listener_.port());
  Observer o;
  Call(&o, "/t/Fail", "x");
  UpstreamResult r = Wait(&o);
  EXPECT_EQ(r.code, 9);
  EXPECT_EQ(r.message, "bad: 100% \xc3\xbc\nline");
  EXPECT_FALSE(r.responded);
  EXPECT_TRUE(o.messages.empty());
}

TEST_F(GrpcUpstreamTest, ManyCallsShareOneConnectionAndLargeMessagesSurvive) {
  Session(listener_.port());
  constexpr int kCalls = 64;
  std::vector<std::unique_ptr<Observer>> obs;
  for (int i = 0; i < kCalls; ++i) {
    obs.push_back(std::make_unique<Observer>());
    // Every 8th is 3 MiB: many DATA frames each way.
    const std::string body = (i % 8 == 0) ? std::string(3 << 20, static_cast<char>('a' + i % 26)) : std::to_string(i);
    Call(obs.back().get(), "/t/Echo", body);
  }
  for (int i = 0; i < kCalls; ++i) {
    UpstreamResult r = Wait(obs[i].get());
    ASSERT_EQ(r.code, 0) << r.message;
    ASSERT_EQ(obs[i]->messages.size(), 1u);
    if (i % 8 == 0) {
      EXPECT_EQ(obs[i]->messages[0], std::string(3 << 20, static_cast<char>('a' + i % 26)));
    } else {
      EXPECT_EQ(obs[i]->messages[0], std::to_string(i));
    }
  }
  bool usable = false;
  OnLoop([&] { usable = session_->usable(); });
  EXPECT_TRUE(usable);
}

TEST_F(GrpcUpstreamTest, RefusedConnectionIsUnavailableBeforeAnyResponse) {
  // A port nobody listens on: bound, then closed.
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const uint16_t port = a.local_endpoint().port();
  a.close();
  Observer o;
  OnLoop([&] {  // the call starts before the refusal can come back
    session_ = GrpcUpstreamSession::Connect(&loop_, port);
    const int32_t id = session_->Start(&o, "/t/Echo", {}, std::nullopt);
    session_->Send(id, "x");
    session_->HalfClose(id);
  });
  UpstreamResult r = Wait(&o);
  EXPECT_EQ(r.code, 14);
  EXPECT_FALSE(r.responded);
  EXPECT_NE(r.message.find("cannot connect to 127.0.0.1:" + std::to_string(port)), std::string::npos) << r.message;
  bool usable = true;
  OnLoop([&] { usable = session_->usable(); });
  EXPECT_FALSE(usable);
}

TEST_F(GrpcUpstreamTest, CancelResetsTheServersStreamAndSilencesTheObserver) {
  Session(listener_.port());
  Observer o;
  const int32_t id = Call(&o, "/t/Hang", "x");
  // The server has the call once the echo behind it is answered (one connection, in order).
  Observer echo;
  Call(&echo, "/t/Echo", "after");
  ASSERT_EQ(Wait(&echo).code, 0);
  OnLoop([&] { session_->Cancel(id); });
  for (int i = 0; i < 500 && server_.hung_closed.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server_.hung_closed.load(), 1);
  EXPECT_EQ(o.done.get_future().wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
}

TEST_F(GrpcUpstreamTest, ServerGoingAwayEndsOpenCallsUnavailable) {
  Session(listener_.port());
  Observer o;
  Call(&o, "/t/Hang", "x");
  Observer echo;
  Call(&echo, "/t/Echo", "after");
  ASSERT_EQ(Wait(&echo).code, 0);
  listener_.Shutdown(0);  // GOAWAY, then the connection is closed under the hung call
  UpstreamResult r = Wait(&o);
  EXPECT_EQ(r.code, 14) << r.message;
  EXPECT_FALSE(r.responded);
}

TEST_F(GrpcUpstreamTest, LongTimeoutsGoInACoarserUnit) {
  // 30 days: 2592000000 ms has 9 digits, over grpc-timeout's 8, so it goes in seconds.
  Session(listener_.port());
  Observer o;
  Call(&o, "/t/Echo", "x", {}, std::chrono::hours(24 * 30));
  ASSERT_EQ(Wait(&o).code, 0);
  EXPECT_GT(server_.last_deadline_ms.load(), int64_t{29} * 24 * 3600 * 1000);
}

TEST_F(GrpcUpstreamTest, HeldStreamStopsAtOneWindowWhileOthersGoOn) {
  // /t/Echo answers a 4 MiB request with 4 MiB: held, only one stream window (1 MiB) of
  // it comes until released; meanwhile another call on the same connection is answered.
  Session(listener_.port());
  const std::string big(4 << 20, 'b');
  struct Counting final : UpstreamObserver {
    std::promise<UpstreamResult> done;
    std::atomic<size_t> messages{0};
    void OnUpstreamMessage(std::string_view, const GrpcMetadata&) override { ++messages; }
    void OnUpstreamClose(UpstreamResult r) override { done.set_value(std::move(r)); }
  } held;
  int32_t id = -1;
  OnLoop([&] {
    id = session_->Start(&held, "/t/Echo", {}, std::nullopt);
    session_->HoldWindow(id, true);
    session_->Send(id, big);
    session_->HalfClose(id);
  });
  Observer other;
  Call(&other, "/t/Echo", "small");
  ASSERT_EQ(Wait(&other).code, 0);
  auto done = held.done.get_future();
  EXPECT_EQ(done.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  EXPECT_EQ(held.messages.load(), 0u);
  OnLoop([&] { session_->HoldWindow(id, false); });
  ASSERT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(done.get().code, 0);
  EXPECT_EQ(held.messages.load(), 1u);
}

TEST_F(GrpcUpstreamTest, ClosedSessionLeavesTheMapAndTheNextCallGetsANewOne) {
  UpstreamSessions sessions;
  std::shared_ptr<GrpcUpstreamSession> first;
  OnLoop([&] { first = sessions.For(&loop_, listener_.port()); });
  EXPECT_EQ(sessions.size(), 1u);
  Observer o;
  OnLoop([&] {
    const int32_t id = first->Start(&o, "/t/Echo", {}, std::nullopt);
    first->Send(id, "x");
    first->HalfClose(id);
  });
  ASSERT_EQ(Wait(&o).code, 0);
  // The replica dies: its connection closes, and the session leaves the map with it
  // (it used to stay until the port was reused).
  listener_.Shutdown(0);
  for (int i = 0; i < 500 && sessions.size() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(sessions.size(), 0u);
  bool usable = true;
  OnLoop([&] { usable = first->usable(); });
  EXPECT_FALSE(usable);
  // A session that cannot even connect leaves too; a later one for the port is new.
  std::shared_ptr<GrpcUpstreamSession> second;
  OnLoop([&] { second = sessions.For(&loop_, listener_.port()); });
  EXPECT_NE(second, first);
  for (int i = 0; i < 500 && sessions.size() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(sessions.size(), 0u);
  sessions.Clear();
}

TEST_F(GrpcUpstreamTest, ClosingASessionTakesItOutOfTheMap) {
  UpstreamSessions sessions;
  std::shared_ptr<GrpcUpstreamSession> first, again, second;
  OnLoop([&] {
    first = sessions.For(&loop_, listener_.port());
    again = sessions.For(&loop_, listener_.port());
  });
  EXPECT_EQ(first, again);
  EXPECT_EQ(sessions.size(), 1u);
  OnLoop([&] { first->Close("done with it"); });
  EXPECT_EQ(sessions.size(), 0u);
  OnLoop([&] { second = sessions.For(&loop_, listener_.port()); });
  EXPECT_NE(first, second);
  EXPECT_EQ(sessions.size(), 1u);
  sessions.Clear();  // closes it on the loop
  EXPECT_EQ(sessions.size(), 0u);
}

}  // namespace
}  // namespace ferry::engine
