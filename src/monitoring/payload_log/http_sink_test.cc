#include "monitoring/payload_log/http_sink.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace ferry::monitoring::payload_log {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

CloudEvent Event(int i, size_t data_bytes = 10) {
  CloudEvent e;
  e.id = "id-" + std::to_string(i);
  e.source = "ferry://test";
  e.type = "org.ferry.inference.request";
  e.model = "m";
  e.version = "1";
  e.data = "{\"pad\":\"" + std::string(data_bytes, 'x') + "\"}";
  return e;
}

// A scripted receiver: answers the codes queued in `answers` (then 200), records every
// body and the time it came; can be held up to play a slow receiver.
class FakeReceiver {
 public:
  HttpPoster poster() {
    return [this](const std::string& url, const std::string& body, std::string_view content_type, milliseconds) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return !held_; });
      urls_.push_back(url);
      bodies_.push_back(body);
      types_.emplace_back(content_type);
      times_.push_back(SteadyClock::now());
      cv_.notify_all();
      int code = 200;
      if (!answers_.empty()) {
        code = answers_.front();
        answers_.erase(answers_.begin());
      }
      if (code == kNoAnswer) return Result<int>(Unavailable("connection refused"));
      return Result<int>(code);
    };
  }
  static constexpr int kNoAnswer = 0;
  // HTTP status codes to answer, kNoAnswer for a connection that fails.
  void Answer(std::vector<int> answers) {
    std::lock_guard lock(mu_);
    answers_ = std::move(answers);
  }
  void Hold(bool held) {
    std::lock_guard lock(mu_);
    held_ = held;
    cv_.notify_all();
  }
  bool WaitPosts(size_t n, milliseconds within = milliseconds(5000)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, within, [&] { return bodies_.size() >= n; });
  }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<std::string> types() {
    std::lock_guard lock(mu_);
    return types_;
  }
  std::vector<SteadyClock::time_point> times() {
    std::lock_guard lock(mu_);
    return times_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> answers_;
  bool held_ = false;
  std::vector<std::string> urls_, bodies_, types_;
  std::vector<SteadyClock::time_point> times_;
};

struct Counts {
  std::mutex mu;
  std::map<EventResult, int> n;
  EventCounter counter() {
    return [this](const CloudEvent&, EventResult r) {
      std::lock_guard lock(mu);
      ++n[r];
    };
  }
  int operator[](EventResult r) {
    std::lock_guard lock(mu);
    return n[r];
  }
};

std::vector<std::string> Ids(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_TRUE(!d.HasParseError() && d.IsArray()) << body;
  std::vector<std::string> ids;
  if (d.IsArray())
    for (const auto& e : d.GetArray()) ids.emplace_back(e["id"].GetString());
  return ids;
}

TEST(HttpSinkTest, FullBatchesGoAtOnceAndFlushSendsTheRest) {
  FakeReceiver receiver;
  Counts counts;
  HttpSinkOptions o;
  o.max_batch_events = 3;
  o.max_delay = milliseconds(60000);
  HttpSink sink("http://127.0.0.1:9/events", o, counts.counter(), receiver.poster());
  for (int i = 0; i < 7; ++i) sink.Write({Event(i)});
  ASSERT_TRUE(receiver.WaitPosts(2));
  sink.Flush();
  auto bodies = receiver.bodies();
  ASSERT_EQ(bodies.size(), 3u);
  EXPECT_EQ(Ids(bodies[0]), (std::vector<std::string>{"id-0", "id-1", "id-2"}));
  EXPECT_EQ(Ids(bodies[1]), (std::vector<std::string>{"id-3", "id-4", "id-5"}));
  EXPECT_EQ(Ids(bodies[2]), (std::vector<std::string>{"id-6"}));
  for (const auto& t : receiver.types()) EXPECT_EQ(t, "application/cloudevents-batch+json");
  EXPECT_EQ(counts[EventResult::kWritten], 7);
}

TEST(HttpSinkTest, APartialBatchGoesAfterTheDelay) {
  FakeReceiver receiver;
  Counts counts;
  HttpSinkOptions o;
  o.max_batch_events = 100;
  o.max_delay = milliseconds(50);
  HttpSink sink("http://127.0.0.1:9/events", o, counts.counter(), receiver.poster());
  const auto start = SteadyClock::now();
  sink.Write({Event(0), Event(1)});
  ASSERT_TRUE(receiver.WaitPosts(1, milliseconds(3000)));
  EXPECT_GE(receiver.times()[0] - start, milliseconds(45));
  EXPECT_EQ(Ids(receiver.bodies()[0]).size(), 2u);
}

TEST(HttpSinkTest, RetryableFailuresBackOffThenSucceed) {
  FakeReceiver receiver;
  receiver.Answer({FakeReceiver::kNoAnswer, 503, 429});
  Counts counts;
  HttpSinkOptions o;
  o.max_batch_events = 1;
  o.initial_backoff = milliseconds(20);
  o.max_backoff = milliseconds(40);
  HttpSink sink("http://127.0.0.1:9/events", o, counts.counter(), receiver.poster());
  sink.Write({Event(0)});
  ASSERT_TRUE(receiver.WaitPosts(4));
  sink.Flush();
  auto t = receiver.times();
  ASSERT_EQ(t.size(), 4u);
  EXPECT_GE(t[1] - t[0], milliseconds(18));
  EXPECT_GE(t[2] - t[1], milliseconds(38)) << "doubled";
  EXPECT_GE(t[3] - t[2], milliseconds(38)) << "capped at max_backoff";
  EXPECT_LT(t[3] - t[2], milliseconds(1000));
  EXPECT_EQ(counts[EventResult::kWritten], 1);
  EXPECT_EQ(counts[EventResult::kFailed], 0);
}

TEST(HttpSinkTest, ARefusalFailsTheBatchAtOnceAndRetriesRunOut) {
  FakeReceiver receiver;
  receiver.Answer({400, 500, 500, 500});
  Counts counts;
  HttpSinkOptions o;
  o.max_batch_events = 2;
  o.max_retries = 2;
  o.initial_backoff = milliseconds(1);
  HttpSink sink("http://127.0.0.1:9/events", o, counts.counter(), receiver.poster());
  sink.Write({Event(0), Event(1)});  // answered 400: not retried
  sink.Write({Event(2), Event(3)});  // 500, 500, 500: the first try and two retries
  sink.Flush();
  EXPECT_EQ(receiver.bodies().size(), 4u);
  EXPECT_EQ(counts[EventResult::kFailed], 4);
  EXPECT_EQ(counts[EventResult::kWritten], 0);
}

TEST(HttpSinkTest, ASlowReceiverNeverBlocksWriteAndTheOverflowIsDropped) {
  FakeReceiver receiver;
  receiver.Hold(true);
  Counts counts;
  HttpSinkOptions o;
  o.max_batch_events = 1;
  o.max_pending_bytes = 5 * (10 + 300);  // room for about five small events
  HttpSink sink("http://127.0.0.1:9/events", o, counts.counter(), receiver.poster());
  sink.Write({Event(0)});  // taken by the sender, which the receiver holds up
  const auto start = SteadyClock::now();
  for (int i = 1; i <= 50; ++i) sink.Write({Event(i)});
  EXPECT_LT(SteadyClock::now() - start, milliseconds(500));
  const int dropped = counts[EventResult::kDropped];
  EXPECT_GE(dropped, 40);
  receiver.Hold(false);
  sink.Flush();
  EXPECT_EQ(counts[EventResult::kWritten] + dropped, 51);
}

TEST(HttpSinkTest, FlushGivesUpOnADeadReceiverWithinItsBound) {
  FakeReceiver receiver;
  receiver.Answer(std::vector<int>(1000, FakeReceiver::kNoAnswer));
  Counts counts;
  HttpSinkOptions o;
  o.max_batch_events = 10;
  o.max_retries = 1000;
  o.initial_backoff = milliseconds(50);
  o.flush_timeout = milliseconds(300);
  HttpSink sink("http://127.0.0.1:9/events", o, counts.counter(), receiver.poster());
  sink.Write({Event(0), Event(1), Event(2)});
  const auto start = SteadyClock::now();
  sink.Flush();
  EXPECT_LT(SteadyClock::now() - start, milliseconds(2000));
  EXPECT_EQ(counts[EventResult::kFailed], 3);
  sink.Write({Event(3)});  // after the flush: dropped, counted
  EXPECT_EQ(counts[EventResult::kDropped], 1);
}

TEST(HttpSinkTest, AtShutdownTheRestFailsWithTheFirstBatchThatFails) {
  FakeReceiver receiver;
  receiver.Answer(std::vector<int>(1000, FakeReceiver::kNoAnswer));
  Counts counts;
  receiver.Hold(true);  // the first batch's first POST waits until the flush has begun
  HttpSinkOptions o;
  o.max_batch_events = 2;
  o.max_delay = milliseconds(60000);
  o.max_retries = 2;
  o.initial_backoff = milliseconds(1);
  HttpSink sink("http://127.0.0.1:9/events", o, counts.counter(), receiver.poster());
  for (int i = 0; i < 5; ++i) sink.Write({Event(i)});
  std::thread flush([&sink] { sink.Flush(); });
  std::this_thread::sleep_for(milliseconds(100));
  receiver.Hold(false);
  flush.join();
  EXPECT_EQ(receiver.bodies().size(), 3u) << "one batch: the first try and two retries";
  EXPECT_EQ(counts[EventResult::kFailed], 5);
}

TEST(HttpSinkTest, TheRealPosterCountsAnUnreachableReceiverAsFailed) {
  Counts counts;
  HttpSinkOptions o;
  o.max_retries = 1;
  o.initial_backoff = milliseconds(1);
  o.timeout = milliseconds(500);
  HttpSink sink("http://127.0.0.1:1/events", o, counts.counter());  // nothing listens on port 1
  sink.Write({Event(0)});
  sink.Flush();
  EXPECT_EQ(counts[EventResult::kFailed], 1);
}

}  // namespace
}  // namespace ferry::monitoring::payload_log
