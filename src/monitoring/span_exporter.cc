#include "monitoring/span_exporter.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/log.h"
#include "core/trace_context.h"
#include "monitoring/http_post.h"

namespace ferry::monitoring {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

void StringAttribute(Writer& w, const std::string& key, const std::string& value) {
  w.StartObject();
  Str(w, "key", key);
  w.Key("value");
  w.StartObject();
  Str(w, "stringValue", value);
  w.EndObject();
  w.EndObject();
}

bool AllZero(const std::array<uint8_t, 8>& id) {
  for (uint8_t b : id)
    if (b) return false;
  return true;
}

}  // namespace

std::string EncodeOtlpJson(const std::vector<Span>& spans, const SpanExporterOptions& options) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("resourceSpans");
  w.StartArray();
  w.StartObject();
  w.Key("resource");
  w.StartObject();
  w.Key("attributes");
  w.StartArray();
  StringAttribute(w, "service.name", options.service_name);
  if (!options.service_version.empty()) StringAttribute(w, "service.version", options.service_version);
  w.EndArray();
  w.EndObject();
  w.Key("scopeSpans");
  w.StartArray();
  w.StartObject();
  w.Key("scope");
  w.StartObject();
  Str(w, "name", "ferry");
  if (!options.service_version.empty()) Str(w, "version", options.service_version);
  w.EndObject();
  w.Key("spans");
  w.StartArray();
  for (const Span& s : spans) {
    w.StartObject();
    Str(w, "traceId", Hex(s.trace_id.data(), s.trace_id.size()));
    Str(w, "spanId", Hex(s.span_id.data(), s.span_id.size()));
    if (!AllZero(s.parent_span_id)) Str(w, "parentSpanId", Hex(s.parent_span_id.data(), s.parent_span_id.size()));
    Str(w, "name", s.name);
    w.Key("kind");
    w.Int(static_cast<int>(s.kind));
    Str(w, "startTimeUnixNano", std::to_string(s.start_ns));
    Str(w, "endTimeUnixNano", std::to_string(s.end_ns));
    w.Key("attributes");
    w.StartArray();
    for (const auto& [k, v] : s.attributes) StringAttribute(w, k, v);
    for (const auto& [k, v] : s.int_attributes) {
      w.StartObject();
      Str(w, "key", k);
      w.Key("value");
      w.StartObject();
      Str(w, "intValue", std::to_string(v));  // int64 as a string, as OTLP/JSON has it
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    w.Key("events");
    w.StartArray();
    for (const auto& [name, t] : s.events) {
      w.StartObject();
      Str(w, "timeUnixNano", std::to_string(t));
      Str(w, "name", name);
      w.EndObject();
    }
    w.EndArray();
    w.Key("status");
    w.StartObject();
    w.Key("code");
    w.Int(s.error ? 2 : 0);  // STATUS_CODE_ERROR : STATUS_CODE_UNSET
    if (s.error && !s.status_message.empty()) Str(w, "message", s.status_message);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return sb.GetString();
}

SpanExporter::SpanExporter(SpanExporterOptions options, std::function<void(const char*, uint64_t)> counted)
    : options_(std::move(options)), counted_(std::move(counted)) {}

SpanExporter::~SpanExporter() { Stop(); }

void SpanExporter::Start() { thread_ = std::thread([this] { Run(); }); }

void SpanExporter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SpanExporter::Add(Span span) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() < options_.max_queue && !stop_) {
      queue_.push_back(std::move(span));
      if (queue_.size() >= options_.max_batch) cv_.notify_one();
      return;
    }
  }
  if (counted_) counted_("dropped", 1);
}

void SpanExporter::AddAll(std::vector<Span> spans) {
  for (auto& s : spans) Add(std::move(s));
}

void SpanExporter::Run() {
  for (;;) {
    std::vector<Span> batch;
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, options_.schedule_delay, [this] { return stop_ || queue_.size() >= options_.max_batch; });
      stopping = stop_;
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!batch.empty()) Export(std::move(batch));
    if (stopping) {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return;
    }
  }
}

void SpanExporter::Export(std::vector<Span> batch) {
  const std::string body = EncodeOtlpJson(batch, options_);
  std::chrono::milliseconds backoff(200);
  for (int attempt = 0;; ++attempt) {
    Result<int> code = HttpPostJsonStatus(options_.endpoint, body, options_.timeout);
    if (code.ok() && *code / 100 == 2) {
      if (counted_) counted_("exported", batch.size());
      return;
    }
    const bool retryable = !code.ok() || *code == 429 || *code == 502 || *code == 503 || *code == 504;
    if (!retryable || attempt >= options_.max_retries) {
      FERRY_LOG(kWarning, "trace export failed; spans dropped",
                ("endpoint", options_.endpoint)("spans", batch.size())(
                    "error", code.ok() ? "answered " + std::to_string(*code) : code.status().message()));
      if (counted_) counted_("failed", batch.size());
      return;
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Stopping cuts the back-off short but still tries once more.
      cv_.wait_for(lock, backoff, [this] { return stop_; });
    }
    backoff *= 2;
  }
}

}  // namespace ferry::monitoring
