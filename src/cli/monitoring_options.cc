#include "cli/monitoring_options.h"

#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <sstream>
#include <vector>

#include "core/clock.h"
#include "monitoring/payload_log/payload_log.h"

namespace ferry::cli {
namespace po = boost::program_options;

void AddMonitoringOptions(po::options_description& desc, const std::string& env) {
  auto e = [&env](const char* name) { return " [" + env + name + "]"; };
  // clang-format off
  desc.add_options()
    ("monitoring-queue-records", po::value<uint64_t>()->default_value(10000), ("answered requests of monitored models waiting for monitoring (payload log, drift); beyond, they are dropped and counted in ferry_monitoring_records_dropped_total" + e("MONITORING_QUEUE_RECORDS")).c_str())
    ("monitoring-queue-bytes", po::value<uint64_t>()->default_value(256ull << 20), ("tensor bytes those requests may hold" + e("MONITORING_QUEUE_BYTES")).c_str())
    ("payload-log", po::value<std::string>()->default_value(""), ("log every model's requests and responses as CloudEvents to file:PATH (JSON Lines, rotated) or http://HOST[:PORT]/PATH (batched POSTs); a model's monitoring.payload_log.sink overrides it ('none' opts out); empty: only models that set one are logged" + e("PAYLOAD_LOG")).c_str())
    ("payload-log-sample-rate", po::value<double>()->default_value(1.0), ("default share of requests logged, 0 to 1, chosen by request id" + e("PAYLOAD_LOG_SAMPLE_RATE")).c_str())
    ("payload-log-mode", po::value<std::string>()->default_value("all"), ("default events logged: all | request | response" + e("PAYLOAD_LOG_MODE")).c_str())
    ("payload-log-max-tensor-bytes", po::value<uint64_t>()->default_value(65536), ("default raw bytes logged per tensor; a larger tensor keeps its first elements and is marked truncated" + e("PAYLOAD_LOG_MAX_TENSOR_BYTES")).c_str())
    ("payload-log-source", po::value<std::string>()->default_value(""), ("CloudEvents source prefix; default ferry://<hostname>" + e("PAYLOAD_LOG_SOURCE")).c_str())
    ("payload-log-file-max-bytes", po::value<uint64_t>()->default_value(100ull << 20), ("file sinks: rotate before a file passes this size" + e("PAYLOAD_LOG_FILE_MAX_BYTES")).c_str())
    ("payload-log-file-keep", po::value<int>()->default_value(5), ("file sinks: rotated files kept (FILE.1 ... FILE.N)" + e("PAYLOAD_LOG_FILE_KEEP")).c_str())
    ("payload-log-http-batch", po::value<uint64_t>()->default_value(100), ("HTTP sinks: events per POST" + e("PAYLOAD_LOG_HTTP_BATCH")).c_str())
    ("payload-log-http-delay-ms", po::value<int>()->default_value(1000), ("HTTP sinks: a partial batch is sent this long after its first event" + e("PAYLOAD_LOG_HTTP_DELAY_MS")).c_str())
    ("payload-log-http-timeout-ms", po::value<int>()->default_value(5000), ("HTTP sinks: per POST" + e("PAYLOAD_LOG_HTTP_TIMEOUT_MS")).c_str())
    ("payload-log-http-retries", po::value<int>()->default_value(5), ("HTTP sinks: retries of a failed POST (no answer, 408, 429, 5xx), with back-off from 200 ms doubling to 10 s" + e("PAYLOAD_LOG_HTTP_RETRIES")).c_str())
    ("payload-log-http-buffer-bytes", po::value<uint64_t>()->default_value(64ull << 20), ("HTTP sinks: event bytes waiting to be sent; beyond, events are dropped and counted" + e("PAYLOAD_LOG_HTTP_BUFFER_BYTES")).c_str())
    ("payload-log-kafka-buffer-messages", po::value<uint64_t>()->default_value(100000), ("Kafka sinks: events waiting in librdkafka's queue (queue.buffering.max.messages); beyond, events are dropped and counted" + e("PAYLOAD_LOG_KAFKA_BUFFER_MESSAGES")).c_str())
    ("payload-log-kafka-buffer-kbytes", po::value<uint64_t>()->default_value(65536), ("Kafka sinks: KiB those events may hold (queue.buffering.max.kbytes)" + e("PAYLOAD_LOG_KAFKA_BUFFER_KBYTES")).c_str())
    ("payload-log-kafka-timeout-ms", po::value<int>()->default_value(60000), ("Kafka sinks: an event not acknowledged this long after it was logged fails and is counted (message.timeout.ms)" + e("PAYLOAD_LOG_KAFKA_TIMEOUT_MS")).c_str())
    ("payload-log-kafka", po::value<std::vector<std::string>>()->composing(), ("Kafka sinks: KEY=VALUE, a librdkafka producer property (security.protocol, sasl.*, compression.type, linger.ms...); repeatable" + e("PAYLOAD_LOG_KAFKA")).c_str());
  // clang-format on
}

Result<Monitoring> CreateMonitoring(const po::variables_map& vm, prometheus::Registry* registry) {
  auto given = [&vm](const char* flag) { return vm.count(flag) && !vm[flag].defaulted(); };
  Monitoring out;
  const std::string sink = vm["payload-log"].as<std::string>();
  if (!sink.empty() && sink != "none" && sink.rfind("file:", 0) != 0 && sink.rfind("http://", 0) != 0 &&
      sink.rfind("kafka://", 0) != 0)
    return InvalidArgument("--payload-log must be file:PATH, http://HOST[:PORT]/PATH, kafka://BROKERS/TOPIC or none, not '" +
                           sink + "'");
  if (sink.rfind("kafka://", 0) == 0) {
#ifdef FERRY_PAYLOAD_LOG_KAFKA
    if (auto t = monitoring::payload_log::ParseKafkaSpec(sink); !t.ok())
      return InvalidArgument("--payload-log: " + t.status().message());
#else
    return InvalidArgument("--payload-log " + sink + ": this ferry was built without Kafka (FERRY_WITH_KAFKA=OFF)");
#endif
  }
  if (!sink.empty()) out.defaults["payload_log.sink"] = sink;
  const double rate = vm["payload-log-sample-rate"].as<double>();
  if (!(rate >= 0 && rate <= 1))
    return InvalidArgument("--payload-log-sample-rate must be between 0 and 1, got " + std::to_string(rate));
  if (given("payload-log-sample-rate")) {
    std::ostringstream s;
    s.precision(17);
    s << rate;
    out.defaults["payload_log.sample_rate"] = s.str();
  }
  const std::string mode = vm["payload-log-mode"].as<std::string>();
  if (mode != "all" && mode != "request" && mode != "response")
    return InvalidArgument("--payload-log-mode must be all, request or response, not '" + mode + "'");
  if (given("payload-log-mode")) out.defaults["payload_log.mode"] = mode;
  if (given("payload-log-max-tensor-bytes"))
    out.defaults["payload_log.max_tensor_bytes"] = std::to_string(vm["payload-log-max-tensor-bytes"].as<uint64_t>());

  monitoring::payload_log::PayloadLogOptions p;
  p.source = vm["payload-log-source"].as<std::string>();
  if (p.source.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == 0) std::snprintf(host, sizeof(host), "localhost");
    p.source = std::string("ferry://") + host;
  }
  p.file.max_bytes = vm["payload-log-file-max-bytes"].as<uint64_t>();
  p.file.keep = vm["payload-log-file-keep"].as<int>();
  if (p.file.keep < 0) return InvalidArgument("--payload-log-file-keep must be 0 or more");
  p.http.max_batch_events = vm["payload-log-http-batch"].as<uint64_t>();
  if (p.http.max_batch_events == 0) return InvalidArgument("--payload-log-http-batch must be at least 1");
  const int delay = vm["payload-log-http-delay-ms"].as<int>();
  const int timeout = vm["payload-log-http-timeout-ms"].as<int>();
  const int retries = vm["payload-log-http-retries"].as<int>();
  if (delay < 0) return InvalidArgument("--payload-log-http-delay-ms must be 0 or more");
  if (timeout <= 0) return InvalidArgument("--payload-log-http-timeout-ms must be more than 0");
  if (retries < 0) return InvalidArgument("--payload-log-http-retries must be 0 or more");
  p.http.max_delay = std::chrono::milliseconds(delay);
  p.http.timeout = std::chrono::milliseconds(timeout);
  p.http.max_retries = retries;
  p.http.max_pending_bytes = vm["payload-log-http-buffer-bytes"].as<uint64_t>();
  p.kafka.max_queued_messages = vm["payload-log-kafka-buffer-messages"].as<uint64_t>();
  p.kafka.max_queued_kbytes = vm["payload-log-kafka-buffer-kbytes"].as<uint64_t>();
  if (p.kafka.max_queued_messages == 0) return InvalidArgument("--payload-log-kafka-buffer-messages must be at least 1");
  if (p.kafka.max_queued_kbytes == 0) return InvalidArgument("--payload-log-kafka-buffer-kbytes must be at least 1");
  const int kafka_timeout = vm["payload-log-kafka-timeout-ms"].as<int>();
  if (kafka_timeout <= 0) return InvalidArgument("--payload-log-kafka-timeout-ms must be more than 0");
  p.kafka.message_timeout = std::chrono::milliseconds(kafka_timeout);
  if (vm.count("payload-log-kafka"))
    for (const std::string& kv : vm["payload-log-kafka"].as<std::vector<std::string>>()) {
      const size_t eq = kv.find('=');
      if (eq == 0 || eq == std::string::npos)
        return InvalidArgument("--payload-log-kafka must be KEY=VALUE (a librdkafka property), not '" + kv + "'");
      p.kafka.properties.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
#ifdef FERRY_PAYLOAD_LOG_KAFKA
  if (Status s = monitoring::payload_log::CheckKafkaProperties(p.kafka); !s.ok())
    return InvalidArgument("--payload-log-kafka: " + s.message());
#endif

  monitoring::MonitoringHubOptions h;
  h.max_records = vm["monitoring-queue-records"].as<uint64_t>();
  h.max_bytes = vm["monitoring-queue-bytes"].as<uint64_t>();
  out.hub = std::make_unique<monitoring::MonitoringHub>(h, registry);
  out.hub->AddConsumer(std::make_unique<monitoring::payload_log::PayloadLog>(std::move(p), registry),
                       std::string(monitoring::payload_log::kSettingsPrefix));
  auto drift = std::make_unique<monitoring::drift::DriftMonitor>(
      monitoring::drift::DriftMonitor::Options{SystemClock::Get(), registry});
  out.drift = drift.get();
  out.hub->AddConsumer(std::move(drift), "drift");
  auto feedback = std::make_unique<monitoring::quality::FeedbackMonitor>(
      monitoring::quality::FeedbackMonitor::Options{SystemClock::Get(), registry});
  out.feedback = feedback.get();
  out.hub->AddConsumer(std::move(feedback), std::string(monitoring::quality::FeedbackMonitor::kSettingsPrefix));
  auto outliers = std::make_unique<monitoring::outliers::OutlierMonitor>(registry);
  out.outliers = outliers.get();
  out.hub->AddConsumer(std::move(outliers), "outliers");
  return out;
}

namespace {

// Drift's report with the feedback consumer's sections joined into its version objects.
Result<std::string> DriftAndQualityJson(const Monitoring& monitoring, std::string_view model, std::string_view version) {
  auto drift = monitoring.drift->SnapshotJson(model, version);
  auto quality = monitoring.feedback->SnapshotJson(model, version);
  if (!quality.ok() && !drift.ok()) {
    return NotFound("model '" + std::string(model) + "'" +
                    (version.empty() ? "" : " version '" + std::string(version) + "'") +
                    " has no drift monitoring and no feedback monitoring (set monitoring.drift.enabled or "
                    "monitoring.feedback.enabled)");
  }
  if (!quality.ok()) return drift;
  if (!drift.ok()) return quality;
  // Both: the feedback consumer's sections join the drift report's version objects.
  rapidjson::Document out, add;
  out.Parse(drift->c_str());
  add.Parse(quality->c_str());
  auto& versions = out["versions"];
  for (auto& v : add["versions"].GetArray()) {
    rapidjson::Value* into = nullptr;
    for (auto& d : versions.GetArray()) {
      if (d["version"] == v["version"]) into = &d;
    }
    if (into == nullptr) {
      versions.PushBack(rapidjson::Value(v, out.GetAllocator()), out.GetAllocator());
      continue;
    }
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      if (m->name == "version") continue;
      into->AddMember(rapidjson::Value(m->name, out.GetAllocator()), rapidjson::Value(m->value, out.GetAllocator()),
                      out.GetAllocator());
    }
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  out.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

Result<std::string> MonitoringReportJson(const Monitoring& monitoring, std::string_view model, std::string_view version) {
  // The outlier consumer adds its summary to each version that scores outliers (and
  // answers for a version that has only those).
  return monitoring.outliers->AddToReport(model, version, DriftAndQualityJson(monitoring, model, version));
}

}  // namespace ferry::cli
