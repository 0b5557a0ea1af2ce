#include "monitoring/payload_log/payload_log.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/log.h"

namespace ferry::monitoring::payload_log {
namespace {

const std::string* Setting(const MonitoredModel& m, std::string_view name) {
  auto it = m.settings.find("payload_log." + std::string(name));
  return it == m.settings.end() ? nullptr : &it->second;
}

Status Bad(std::string_view name, const std::string& why) {
  return InvalidArgument("monitoring.payload_log." + std::string(name) + ": " + why);
}

}  // namespace

std::string_view EventResultName(EventResult r) {
  switch (r) {
    case EventResult::kWritten: return "written";
    case EventResult::kDropped: return "dropped";
    case EventResult::kFailed: return "failed";
  }
  return "failed";
}

PayloadLog::PayloadLog(PayloadLogOptions options, prometheus::Registry* registry) : options_(std::move(options)) {
  if (registry)
    events_family_ = &prometheus::BuildCounter()
                          .Name("ferry_payload_log_events_total")
                          .Help("Payload log events (CloudEvents) by what became of them: written, dropped, failed")
                          .Register(*registry);
}

PayloadLog::~PayloadLog() = default;

void PayloadLog::Count(const CloudEvent& event, EventResult result) {
  if (!events_family_) return;
  std::lock_guard lock(counters_mu_);
  auto key = std::make_tuple(event.model, event.version, result);
  auto it = counters_.find(key);
  if (it == counters_.end()) {
    // A version's first event creates all three results' series at 0, so that a rule's
    // rate() over `dropped` or `failed` sees their first increase rather than a new series.
    for (EventResult r : {EventResult::kWritten, EventResult::kDropped, EventResult::kFailed})
      counters_.emplace(std::make_tuple(event.model, event.version, r),
                        &events_family_->Add({{"model", event.model},
                                              {"version", event.version},
                                              {"result", std::string(EventResultName(r))}}));
    it = counters_.find(key);
  }
  it->second->Increment();
}

Result<PayloadSink*> PayloadLog::SinkFor(const std::string& spec) {
  // REQUIRES: mu_ held.
  std::string key = spec;
  std::unique_ptr<PayloadSink> sink;
  auto counted = [this](const CloudEvent& e, EventResult r) { Count(e, r); };
  if (spec.rfind("file:", 0) == 0) {
    std::string path = spec.substr(5);
    if (path.rfind("//", 0) == 0) path = path.substr(2);  // file:///var/log/x.jsonl
    if (path.empty() || path.back() == '/') return Bad("sink", "'" + spec + "' names no file");
    std::error_code ec;
    std::filesystem::path p = std::filesystem::absolute(path, ec).lexically_normal();
    key = "file:" + p.string();
    if (auto it = sinks_.find(key); it != sinks_.end()) return it->second.get();
    sink = std::make_unique<FileSink>(key, p.string(), options_.file, counted);
  } else if (spec.rfind("http://", 0) == 0) {
    if (spec.size() == 7) return Bad("sink", "'" + spec + "' names no host");
    if (auto it = sinks_.find(key); it != sinks_.end()) return it->second.get();
    sink = std::make_unique<HttpSink>(spec, options_.http, counted, options_.http_poster);
  } else if (spec.rfind("https://", 0) == 0) {
    return Bad("sink", "'" + spec + "': TLS is not supported; use http:// (e.g. to a local collector)");
  } else if (spec.rfind("kafka:", 0) == 0) {
#ifdef FERRY_PAYLOAD_LOG_KAFKA
    Result<KafkaTarget> target = ParseKafkaSpec(spec);
    if (!target.ok()) return Bad("sink", target.status().message());
    key = KafkaSpec(*target);
    if (auto it = sinks_.find(key); it != sinks_.end()) return it->second.get();
    Result<std::unique_ptr<KafkaSink>> kafka = KafkaSink::Create(*target, options_.kafka, counted);
    if (!kafka.ok()) return Bad("sink", "'" + spec + "': " + kafka.status().message());
    sink = std::move(*kafka);
#else
    return Bad("sink", "'" + spec + "': this ferry was built without Kafka (FERRY_WITH_KAFKA=OFF: no librdkafka)");
#endif
  } else {
    return Bad("sink", "'" + spec + "' is not file:PATH, http://HOST[:PORT]/PATH, kafka://BROKERS/TOPIC, kafka or none");
  }
  PayloadSink* raw = sink.get();
  sinks_.emplace(key, std::move(sink));
  FERRY_LOG(kInfo, "payload log sink", ("sink", key));
  return raw;
}

Status PayloadLog::Attach(const MonitoredModel& m) {
  static const std::set<std::string, std::less<>> kKnown = {
      "payload_log.sink",          "payload_log.sample_rate",   "payload_log.mode",
      "payload_log.max_tensor_bytes", "payload_log.kafka.brokers", "payload_log.kafka.topic"};
  for (const auto& [key, value] : m.settings)
    if (key.rfind("payload_log.", 0) == 0 && !kKnown.count(key))
      return InvalidArgument("unknown setting 'monitoring." + key +
                             "' (payload_log takes sink, sample_rate, mode, max_tensor_bytes, kafka.brokers, "
                             "kafka.topic)");
  auto log = std::make_shared<VersionLog>();
  log->events.source = options_.source;
  if (const std::string* v = Setting(m, "sample_rate")) {
    double rate = -1;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), rate);
    if (ec != std::errc() || p != v->data() + v->size() || !(rate >= 0 && rate <= 1))
      return Bad("sample_rate", "must be a number from 0 to 1, not '" + *v + "'");
    log->sample_rate = rate;
    if (rate > 0 && rate < 1) log->events.sampled_rate = std::max<int64_t>(1, std::llround(1 / rate));
  }
  if (const std::string* v = Setting(m, "mode")) {
    if (*v == "all") log->events.mode = LogMode::kAll;
    else if (*v == "request") log->events.mode = LogMode::kRequest;
    else if (*v == "response") log->events.mode = LogMode::kResponse;
    else return Bad("mode", "must be all, request or response, not '" + *v + "'");
  }
  if (const std::string* v = Setting(m, "max_tensor_bytes")) {
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || p != v->data() + v->size())
      return Bad("max_tensor_bytes", "must be a whole number of bytes, not '" + *v + "'");
    log->events.max_tensor_bytes = n;
  }
  const std::string* spec = Setting(m, "sink");
  // sink: kafka names its target in two settings of its own; any other sink takes none.
  const std::string* brokers = Setting(m, "kafka.brokers");
  const std::string* topic = Setting(m, "kafka.topic");
  std::string kafka_spec;
  if (spec && *spec == "kafka") {
    if (!brokers || brokers->empty()) return Bad("kafka.brokers", "must be set (HOST:PORT[,HOST:PORT...]) with sink kafka");
    if (!topic || topic->empty()) return Bad("kafka.topic", "must be set with sink kafka");
    kafka_spec = "kafka://" + *brokers + "/" + *topic;
    spec = &kafka_spec;
  } else if (brokers || topic) {
    return Bad(brokers ? "kafka.brokers" : "kafka.topic",
               "only applies with sink kafka, not '" + (spec ? *spec : std::string()) + "'");
  }
  std::lock_guard lock(mu_);
  if (spec && !spec->empty() && *spec != "none") {
    FERRY_ASSIGN_OR_RETURN(log->sink, SinkFor(*spec));
  } else if (Setting(m, "sample_rate") || Setting(m, "mode") || Setting(m, "max_tensor_bytes")) {
    return Bad("sink", "not set, so the other payload_log settings have no effect (set it, or --payload-log)");
  }
  if (!log->sink || log->sample_rate <= 0) {
    if (auto it = versions_.find(m.model); it != versions_.end()) {
      it->second.erase(m.version);
      if (it->second.empty()) versions_.erase(it);
    }
    return Status::Ok();
  }
  FERRY_LOG(kInfo, "payload log",
            ("model", m.model)("version", m.version)("sink", log->sink->spec())("sample_rate", log->sample_rate));
  versions_[m.model][m.version] = std::move(log);
  return Status::Ok();
}

void PayloadLog::Detach(std::string_view model, std::string_view version) {
  std::lock_guard lock(mu_);
  auto it = versions_.find(model);
  if (it == versions_.end()) return;
  if (auto v = it->second.find(version); v != it->second.end()) it->second.erase(v);
  if (it->second.empty()) versions_.erase(it);
}

std::shared_ptr<const PayloadLog::VersionLog> PayloadLog::Find(std::string_view model, std::string_view version) const {
  std::lock_guard lock(mu_);
  auto it = versions_.find(model);
  if (it == versions_.end()) return nullptr;
  auto v = it->second.find(version);
  return v == it->second.end() ? nullptr : v->second;
}

bool PayloadLog::Wants(std::string_view model, std::string_view version) const { return Find(model, version) != nullptr; }

TapDemand PayloadLog::Demand(std::string_view model, std::string_view version) const {
  auto log = Find(model, version);
  if (!log) return {};
  TapDemand d;
  d.wanted = true;
  d.inputs = log->events.mode != LogMode::kResponse;
  d.outputs = log->events.mode != LogMode::kRequest;
  d.sample_rate = log->sample_rate;
  return d;
}

void PayloadLog::Consume(const InferenceRecord& record) {
  const InferenceRecord* one[] = {&record};
  ConsumeBatch(one);
}

void PayloadLog::ConsumeBatch(std::span<const InferenceRecord* const> records) {
  if (records.empty()) return;
  auto log = Find(records.front()->model, records.front()->version);
  if (!log) return;
  for (const InferenceRecord* r : records)
    if (Sampled(r->request_id, log->sample_rate)) log->sink->WriteRecord(*r, log->events);
  log->sink->EndBatch();
}

void PayloadLog::Flush() {
  std::lock_guard lock(mu_);
  for (auto& [spec, sink] : sinks_) sink->Flush();
}

}  // namespace ferry::monitoring::payload_log
