#include "monitoring/payload_log/kafka_sink.h"

#include <librdkafka/rdkafka.h>

#include "core/log.h"

namespace ferry::monitoring::payload_log {
namespace {

constexpr std::string_view kScheme = "kafka://";

// What a delivery report needs to count its event: the event less its data.
CloudEvent* Tag(const CloudEvent& e) {
  auto* t = new CloudEvent;
  t->id = e.id;
  t->type = e.type;
  t->model = e.model;
  t->version = e.version;
  return t;
}

void DeliveryCb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  static_cast<KafkaSink*>(opaque)->OnDelivery(m->_private, m->err == RD_KAFKA_RESP_ERR_NO_ERROR,
                                              m->err ? rd_kafka_err2str(m->err) : "");
}

void ErrorCb(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<KafkaSink*>(opaque)->OnError(err, reason);
}

// Keeps librdkafka's own log lines (every failed connection, at LOG_ERR) off stderr;
// the error callback reports them, once per episode, through ferry's log. Only
// critical ones pass.
void LogCb(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  if (level <= 2) FERRY_LOG(kWarning, "payload log kafka client", ("facility", fac)("message", buf));
}

}  // namespace

Result<KafkaTarget> ParseKafkaSpec(std::string_view spec) {
  if (spec.substr(0, kScheme.size()) != kScheme)
    return InvalidArgument("'" + std::string(spec) + "' is not kafka://HOST:PORT[,HOST:PORT...]/TOPIC");
  std::string_view rest = spec.substr(kScheme.size());
  const size_t slash = rest.find('/');
  KafkaTarget t;
  t.brokers = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) t.topic = std::string(rest.substr(slash + 1));
  if (t.brokers.empty()) return InvalidArgument("'" + std::string(spec) + "' names no broker");
  if (t.topic.empty()) return InvalidArgument("'" + std::string(spec) + "' names no topic (kafka://BROKERS/TOPIC)");
  // Kafka's own rule for topic names.
  if (t.topic.size() > 249 || t.topic == "." || t.topic == "..")
    return InvalidArgument("'" + std::string(spec) + "': '" + t.topic + "' is not a valid topic name");
  for (char c : t.topic)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return InvalidArgument("'" + std::string(spec) + "': topic '" + t.topic +
                             "' may hold only letters, digits, '.', '_' and '-'");
  return t;
}

std::string KafkaSpec(const KafkaTarget& t) { return std::string(kScheme) + t.brokers + "/" + t.topic; }

KafkaRecord ToKafkaRecord(const CloudEvent& e) {
  KafkaRecord r;
  r.headers.reserve(6 + e.extensions.size());
  r.headers.emplace_back("ce_specversion", "1.0");
  r.headers.emplace_back("ce_id", e.id);
  r.headers.emplace_back("ce_source", e.source);
  r.headers.emplace_back("ce_type", e.type);
  r.headers.emplace_back("ce_time", Rfc3339Millis(e.time_ms));
  for (const auto& [name, value] : e.extensions) {
    std::string text;
    if (const auto* s = std::get_if<std::string>(&value)) text = *s;
    else if (const auto* i = std::get_if<int64_t>(&value)) text = std::to_string(*i);
    else text = std::get<bool>(value) ? "true" : "false";
    if (name == "requestid") r.key = text;
    r.headers.emplace_back("ce_" + name, std::move(text));
  }
  if (!e.data.empty()) {
    r.headers.emplace_back("content-type", e.datacontenttype);
    r.value = e.data;
  }
  return r;
}

KafkaSink::KafkaSink(const KafkaTarget& target, EventCounter counted, std::chrono::milliseconds flush_timeout)
    : spec_(KafkaSpec(target)), topic_(target.topic), flush_timeout_(flush_timeout), counted_(std::move(counted)) {}

namespace {

// The producer's configuration: ferry's properties, then the user's. Null and the
// refusal (naming the property) when librdkafka does not take one.
rd_kafka_conf_t* MakeConf(const std::string& brokers, const KafkaSinkOptions& o, Status* error) {
  std::vector<std::pair<std::string, std::string>> kv = {
      {"bootstrap.servers", brokers},
      {"client.id", "ferry-payload-log"},
      // Idempotent: a retried batch neither repeats nor overtakes, so a request's events
      // stay in order in their partition.
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"queue.buffering.max.messages", std::to_string(o.max_queued_messages)},
      {"queue.buffering.max.kbytes", std::to_string(o.max_queued_kbytes)},
      {"message.timeout.ms", std::to_string(o.message_timeout.count())},
      {"linger.ms", "20"},
  };
  kv.insert(kv.end(), o.properties.begin(), o.properties.end());
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [k, v] : kv)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      *error = InvalidArgument("kafka property " + k + "=" + v + ": " + errstr);
      return nullptr;
    }
  return conf;
}

}  // namespace

Status CheckKafkaProperties(const KafkaSinkOptions& options) {
  Status error;
  rd_kafka_conf_t* conf = MakeConf("127.0.0.1:9092", options, &error);
  if (conf) rd_kafka_conf_destroy(conf);
  return error;
}

Result<std::unique_ptr<KafkaSink>> KafkaSink::Create(const KafkaTarget& target, KafkaSinkOptions o,
                                                     EventCounter counted) {
  Status error;
  rd_kafka_conf_t* conf = MakeConf(target.brokers, o, &error);
  if (!conf) return error;
  std::unique_ptr<KafkaSink> sink(new KafkaSink(target, std::move(counted), o.flush_timeout));
  char errstr[512];
  rd_kafka_conf_set_opaque(conf, sink.get());
  rd_kafka_conf_set_dr_msg_cb(conf, DeliveryCb);
  rd_kafka_conf_set_error_cb(conf, ErrorCb);
  rd_kafka_conf_set_log_cb(conf, LogCb);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return InvalidArgument(std::string("kafka producer: ") + errstr);
  }
  sink->rk_ = rk;
  sink->poller_ = std::thread([s = sink.get()] { s->Poll(); });
  return sink;
}

KafkaSink::~KafkaSink() {
  Flush();
  if (rk_) rd_kafka_destroy(rk_);
}

void KafkaSink::Poll() {
  while (!stop_.load(std::memory_order_acquire)) rd_kafka_poll(rk_, 100);
}

void KafkaSink::Trouble(const char* what, const std::string& detail) {
  if (!troubled_.exchange(true))
    FERRY_LOG(kWarning, "payload log: kafka events not delivered (logged once until delivery resumes)",
              ("sink", spec_)("what", what)("error", detail));
}

void KafkaSink::OnDelivery(void* opaque, bool ok, const char* error) {
  std::unique_ptr<CloudEvent> tag(static_cast<CloudEvent*>(opaque));
  if (ok) {
    if (troubled_.exchange(false)) FERRY_LOG(kInfo, "payload log: kafka delivery resumed", ("sink", spec_));
  } else {
    Trouble("delivery failed", error);
  }
  if (counted_ && tag) counted_(*tag, ok ? EventResult::kWritten : EventResult::kFailed);
}

void KafkaSink::OnError(int code, const char* reason) {
  const auto err = static_cast<rd_kafka_resp_err_t>(code);
  // Connection losses are retried by librdkafka; they start an episode (logged once),
  // the events' own fates are counted by their delivery reports.
  char fatal[256] = {};
  if (rd_kafka_fatal_error(rk_, fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    FERRY_LOG(kError, "payload log: kafka producer failed for good", ("sink", spec_)("error", fatal));
    return;
  }
  Trouble(rd_kafka_err2name(err), reason);
}

void KafkaSink::Write(std::vector<CloudEvent> events) {
  if (stop_.load(std::memory_order_acquire)) {  // after Flush: nothing would serve their reports
    if (counted_)
      for (const CloudEvent& e : events) counted_(e, EventResult::kDropped);
    return;
  }
  for (const CloudEvent& e : events) {
    KafkaRecord r = ToKafkaRecord(e);
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(r.headers.size());
    for (const auto& [name, value] : r.headers)
      rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    CloudEvent* tag = Tag(e);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(r.key.empty() ? nullptr : r.key.data(), r.key.size()),
        RD_KAFKA_V_VALUE(r.value.empty() ? nullptr : r.value.data(), r.value.size()), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(tag), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;  // librdkafka owns the headers now
    rd_kafka_headers_destroy(hdrs);
    std::unique_ptr<CloudEvent> owned(tag);
    const bool full = err == RD_KAFKA_RESP_ERR__QUEUE_FULL;
    Trouble(full ? "queue full" : "produce refused", rd_kafka_err2str(err));
    if (counted_) counted_(*owned, full ? EventResult::kDropped : EventResult::kFailed);
  }
}

void KafkaSink::Flush() {
  std::call_once(flushed_, [this] {
    if (!rk_) return;
    stop_.store(true, std::memory_order_release);
    if (poller_.joinable()) poller_.join();
    // Waits for the queue (serving delivery reports here), then gives up on the rest:
    // purged messages get their reports (failed) from the last poll.
    if (rd_kafka_flush(rk_, static_cast<int>(flush_timeout_.count())) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const int left = rd_kafka_outq_len(rk_);
      FERRY_LOG(kWarning, "payload log: kafka flush timed out; the rest fails",
                ("sink", spec_)("events", left)("timeout_ms", flush_timeout_.count()));
      rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      // Queued messages report at once; in-flight ones once their requests are
      // abandoned: a short bounded wait for those reports.
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      do rd_kafka_poll(rk_, 50);
      while (rd_kafka_outq_len(rk_) > 0 && std::chrono::steady_clock::now() < until);
    }
  });
}

}  // namespace ferry::monitoring::payload_log
