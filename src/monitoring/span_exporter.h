#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ferry::monitoring {

// One finished span, in OpenTelemetry's terms (times on the wall clock, Unix ns).
struct Span {
  enum class Kind { kInternal = 1, kServer = 2, kClient = 3 };
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  std::array<uint8_t, 8> parent_span_id{};  // all zero: a root span
  std::string name;
  Kind kind = Kind::kInternal;
  uint64_t start_ns = 0, end_ns = 0;
  std::vector<std::pair<std::string, std::string>> attributes;      // string values
  std::vector<std::pair<std::string, int64_t>> int_attributes;
  std::vector<std::pair<std::string, uint64_t>> events;            // name, time
  bool error = false;
  std::string status_message;
};

struct SpanExporterOptions {
  std::string endpoint;           // OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces
  std::string service_name = "ferry";
  std::string service_version;
  size_t max_queue = 2048;        // spans waiting; beyond, new ones are dropped (counted)
  size_t max_batch = 512;         // spans per export request
  std::chrono::milliseconds schedule_delay{1000};  // a batch goes at least this often
  std::chrono::milliseconds timeout{5000};         // per export request
  int max_retries = 3;            // for 429, 502, 503, 504 and connection errors, with back-off
};

// Encodes spans as an OTLP ExportTraceServiceRequest in OTLP/JSON (hex ids, times as
// decimal strings, enum values as integers), for one resource with service.name.
std::string EncodeOtlpJson(const std::vector<Span>& spans, const SpanExporterOptions& options);

// Exports spans over OTLP/HTTP (JSON) in batches, on its own thread, off the request
// path: Add never blocks beyond a short lock (a full queue drops the span, counted). A
// batch goes when it is full or schedule_delay after the previous one; a failed export
// is retried for the retryable answers (429, 502, 503, 504, no connection) with back-off,
// then dropped (counted). Stop exports what is queued, within one timeout.
// Thread-safety: Add and the counters are thread-safe; Start/Stop by one owner thread.
class SpanExporter {
 public:
  // counted(result, n): called with "exported", "dropped" (queue full) or "failed" (the
  // receiver refused or was unreachable) for every span, on any thread. May be empty.
  SpanExporter(SpanExporterOptions options, std::function<void(const char*, uint64_t)> counted);
  ~SpanExporter();
  void Start();
  void Stop();
  void Add(Span span);
  void AddAll(std::vector<Span> spans);

 private:
  void Run();
  void Export(std::vector<Span> batch);

  const SpanExporterOptions options_;
  std::function<void(const char*, uint64_t)> counted_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Span> queue_;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  std::thread thread_;
};

}  // namespace ferry::monitoring
