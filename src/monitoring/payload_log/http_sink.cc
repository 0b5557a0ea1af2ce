#include "monitoring/payload_log/http_sink.h"

#include <algorithm>

#include "core/log.h"
#include "monitoring/http_post.h"

namespace ferry::monitoring::payload_log {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Bytes an event holds while it waits: its data plus its attributes, roughly.
size_t EventBytes(const CloudEvent& e) { return e.data.size() + e.id.size() + e.source.size() + 256; }

}  // namespace

HttpSink::HttpSink(std::string url, HttpSinkOptions options, EventCounter counted, HttpPoster poster)
    : url_(std::move(url)), options_(options), counted_(std::move(counted)), poster_(std::move(poster)) {
  if (!poster_)
    poster_ = [](const std::string& url, const std::string& body, std::string_view content_type,
                 std::chrono::milliseconds timeout) { return HttpPostJsonStatus(url, body, timeout, content_type); };
  thread_ = std::thread([this] { Run(); });
}

HttpSink::~HttpSink() { Flush(); }

void HttpSink::Write(std::vector<CloudEvent> events) {
  std::vector<CloudEvent> dropped;
  bool notify = false;
  {
    std::lock_guard lock(mu_);
    const auto now = SteadyClock::now();
    for (auto& e : events) {
      const size_t bytes = EventBytes(e);
      if (flushing_ || pending_bytes_ + bytes > options_.max_pending_bytes) {
        dropped.push_back(std::move(e));
        continue;
      }
      notify = notify || pending_.empty() || pending_.size() + 1 == options_.max_batch_events;
      pending_bytes_ += bytes;
      pending_.push_back({std::move(e), now});
    }
  }
  if (notify) cv_.notify_all();
  if (counted_)
    for (const auto& e : dropped) counted_(e, EventResult::kDropped);
}

void HttpSink::Flush() {
  {
    std::lock_guard lock(mu_);
    if (flushing_) return;
    flushing_ = true;
    flush_deadline_ = SteadyClock::now() + options_.flush_timeout;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HttpSink::Run() {
  const size_t max_batch = std::max<size_t>(1, options_.max_batch_events);
  for (;;) {
    std::vector<CloudEvent> batch;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        if (pending_.size() >= max_batch || (flushing_ && !pending_.empty())) break;
        if (flushing_) return;  // and nothing is left
        if (pending_.empty()) {
          cv_.wait(lock);
          continue;
        }
        const auto due = pending_.front().arrived + options_.max_delay;
        if (SteadyClock::now() >= due) break;
        cv_.wait_until(lock, due);
      }
      while (!pending_.empty() && batch.size() < max_batch) {
        pending_bytes_ -= EventBytes(pending_.front().event);
        batch.push_back(std::move(pending_.front().event));
        pending_.pop_front();
      }
    }
    if (!Send(batch)) {
      // At shutdown a receiver that stayed unreachable through a whole batch's retries
      // will not take the rest either: fail it now rather than hold the exit per batch.
      std::vector<CloudEvent> rest;
      {
        std::lock_guard lock(mu_);
        if (!flushing_) continue;
        for (auto& p : pending_) rest.push_back(std::move(p.event));
        pending_.clear();
        pending_bytes_ = 0;
      }
      if (counted_)
        for (const auto& e : rest) counted_(e, EventResult::kFailed);
    }
  }
}

bool HttpSink::Backoff(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  auto until = SteadyClock::now() + d;
  // Flushing cuts a back-off short at the flush deadline (and only there: a flush still
  // retries while it has time).
  for (;;) {
    if (flushing_ && flush_deadline_ < until) until = flush_deadline_;
    if (cv_.wait_until(lock, until) == std::cv_status::timeout) break;
  }
  return !flushing_ || SteadyClock::now() < flush_deadline_;
}

bool HttpSink::Send(const std::vector<CloudEvent>& batch) {
  std::string body = "[";
  for (size_t i = 0; i < batch.size(); ++i) {
    if (i) body += ',';
    AppendStructured(batch[i], &body);
  }
  body += ']';
  std::chrono::milliseconds backoff = options_.initial_backoff;
  EventResult result = EventResult::kFailed;
  bool refused = false;  // answered, but not taken: the receiver is there
  std::string error;
  for (int attempt = 0;; ++attempt) {
    std::chrono::milliseconds timeout = options_.timeout;
    {
      std::lock_guard lock(mu_);
      if (flushing_) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(flush_deadline_ - SteadyClock::now());
        if (left.count() <= 0) {
          error = error.empty() ? "shutdown: the flush time ran out" : error;
          break;
        }
        timeout = std::min(timeout, left);
      }
    }
    Result<int> code = poster_(url_, body, kBatchContentType, timeout);
    if (code.ok() && *code / 100 == 2) {
      result = EventResult::kWritten;
      break;
    }
    error = code.ok() ? "answered " + std::to_string(*code) : code.status().message();
    const bool retryable = !code.ok() || *code == 408 || *code == 429 || *code / 100 == 5;
    if (!retryable) {
      refused = true;
      break;
    }
    if (attempt >= options_.max_retries) break;
    if (!Backoff(backoff)) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  if (result == EventResult::kFailed) {
    // One line per 10 s at most: a receiver that is down must not flood the server's log.
    const auto now = SteadyClock::now();
    if (now - last_warning_ >= std::chrono::seconds(10)) {
      last_warning_ = now;
      FERRY_LOG(kWarning, "payload log: events not delivered", ("url", url_)("events", batch.size())("error", error));
    }
  }
  if (counted_)
    for (const auto& e : batch) counted_(e, result);
  return result == EventResult::kWritten || refused;
}

}  // namespace ferry::monitoring::payload_log
