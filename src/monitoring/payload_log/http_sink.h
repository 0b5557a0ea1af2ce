#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/result.h"
#include "monitoring/payload_log/payload_sink.h"

namespace ferry::monitoring::payload_log {

struct HttpSinkOptions {
  size_t max_batch_events = 100;                   // events per POST
  std::chrono::milliseconds max_delay{1000};       // a partial batch goes this long after its first event
  size_t max_pending_bytes = 64u << 20;            // event data waiting to be sent; beyond, new events are dropped
  std::chrono::milliseconds timeout{5000};         // per POST: connect, send and answer
  int max_retries = 5;                             // after the first attempt, for retryable failures
  std::chrono::milliseconds initial_backoff{200};  // doubled per retry ...
  std::chrono::milliseconds max_backoff{10000};    // ... up to this
  std::chrono::milliseconds flush_timeout{10000};  // Flush's bound; what is left then fails
};

// One POST: (url, body, content type, timeout) -> the HTTP status, or an error when no
// answer came. The default is HttpPostJsonStatus; tests inject their own.
using HttpPoster =
    std::function<Result<int>(const std::string& url, const std::string& body, std::string_view content_type,
                              std::chrono::milliseconds timeout)>;

// POSTs events to an HTTP receiver in CloudEvents' batched mode (a JSON array of
// structured events, Content-Type application/cloudevents-batch+json), from its own
// sender thread, so a slow or absent receiver never holds up the hub. A batch goes when
// it is full or max_delay after its first event. A failed POST (no answer, 408, 429,
// 5xx) is retried with exponential back-off capped at max_backoff, then its events
// fail (counted); other answers fail the batch at once. Events that arrive while the
// buffer holds max_pending_bytes are dropped (counted). Flush sends what is left,
// retrying only within flush_timeout; once a batch's retries run out during the flush,
// the rest fails with it (the receiver is gone), so shutdown waits for one batch.
// Thread-safety: as PayloadSink; the sender thread is internal.
class HttpSink final : public PayloadSink {
 public:
  HttpSink(std::string url, HttpSinkOptions options, EventCounter counted, HttpPoster poster = nullptr);
  ~HttpSink() override;  // Flush()
  void Write(std::vector<CloudEvent> events) override;
  void Flush() override;
  const std::string& spec() const override { return url_; }

 private:
  void Run();
  // Sends one batch, with retries, and counts its events; false when the receiver
  // could not be reached (or kept failing) through every retry.
  bool Send(const std::vector<CloudEvent>& batch);
  // Waits `d` unless the flush deadline comes first; false when it has passed.
  bool Backoff(std::chrono::milliseconds d);

  const std::string url_;
  const HttpSinkOptions options_;
  EventCounter counted_;
  HttpPoster poster_;

  std::mutex mu_;
  std::condition_variable cv_;
  struct Pending {
    CloudEvent event;
    std::chrono::steady_clock::time_point arrived;
  };
  std::deque<Pending> pending_;  // guarded by mu_
  size_t pending_bytes_ = 0;     // guarded by mu_
  bool flushing_ = false;           // guarded by mu_
  std::chrono::steady_clock::time_point flush_deadline_;  // guarded by mu_
  std::chrono::steady_clock::time_point last_warning_{};  // sender thread only
  std::thread thread_;
};

}  // namespace ferry::monitoring::payload_log
