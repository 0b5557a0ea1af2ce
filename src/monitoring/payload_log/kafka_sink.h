#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/result.h"
#include "monitoring/payload_log/payload_sink.h"

// kafka_sink.cc needs librdkafka and is compiled only with FERRY_WITH_KAFKA (then
// FERRY_PAYLOAD_LOG_KAFKA is defined); this header needs neither, so the options can be
// set in any build.

struct rd_kafka_s;

namespace ferry::monitoring::payload_log {

struct KafkaSinkOptions {
  // librdkafka's own queue, the sink's whole buffer: beyond either bound a new event is
  // dropped (counted), never waited for.
  size_t max_queued_messages = 100000;     // queue.buffering.max.messages
  size_t max_queued_kbytes = 64 * 1024;    // queue.buffering.max.kbytes
  // An event not acknowledged this long after it was written (broker away, topic
  // missing) fails (counted): message.timeout.ms.
  std::chrono::milliseconds message_timeout{60000};
  std::chrono::milliseconds flush_timeout{10000};  // Flush's bound; what is left then fails
  // More librdkafka properties (security.protocol, sasl.*, linger.ms, compression.type,
  // ...), applied after ferry's own, so they may override them.
  std::vector<std::pair<std::string, std::string>> properties;
};

// Whether librdkafka takes the options as producer properties (so a bad flag is named
// at start, not when the first model attaches); InvalidArgument naming the property.
Status CheckKafkaProperties(const KafkaSinkOptions& options);

// Where a kafka sink spec points: kafka://HOST:PORT[,HOST:PORT...]/TOPIC.
struct KafkaTarget {
  std::string brokers;
  std::string topic;
};
// Parses a spec; InvalidArgument (naming what is wrong) for anything else.
Result<KafkaTarget> ParseKafkaSpec(std::string_view spec);
// The canonical spec of a target (how sinks are keyed and shown).
std::string KafkaSpec(const KafkaTarget& target);

// One Kafka record of an event in CloudEvents' Kafka protocol binding, binary content
// mode: every attribute but data as a `ce_<name>` header (ce_specversion, ce_id,
// ce_source, ce_type, ce_time, then the extensions; integers in decimal, booleans as
// true/false), datacontenttype as the `content-type` header (when there is data), the
// data as the value, and the request id (the `requestid` extension) as the key, so a
// request's events share a partition and keep their order.
struct KafkaRecord {
  std::string key;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string value;
};
KafkaRecord ToKafkaRecord(const CloudEvent& event);

// Produces events to a Kafka topic through librdkafka (an idempotent producer: acks=all,
// order kept per partition across retries). Write hands each event to librdkafka's
// queue without blocking; a full queue drops the event (counted `dropped`). A poller
// thread serves the delivery reports: an acknowledged event is `written`, one that timed
// out or was refused is `failed`. A broker that is away at start or later only delays
// delivery (librdkafka reconnects by itself) until message_timeout; each episode of
// failures or drops is logged once, and again when delivery resumes. Flush waits up to
// flush_timeout for the queue, then purges what is left (counted `failed`).
// Thread-safety: as PayloadSink (Write and Flush on the hub's thread); the poller thread
// is internal; the counter is called on it (and on Flush's caller).
class KafkaSink final : public PayloadSink {
 public:
  // The producer (librdkafka only checks the settings here; it connects later).
  // InvalidArgument naming the property for a setting librdkafka refuses.
  static Result<std::unique_ptr<KafkaSink>> Create(const KafkaTarget& target, KafkaSinkOptions options,
                                                   EventCounter counted);
  ~KafkaSink() override;  // Flush()
  void Write(std::vector<CloudEvent> events) override;
  void Flush() override;
  const std::string& spec() const override { return spec_; }

  // librdkafka's callbacks (on the poller thread, or in Flush).
  void OnDelivery(void* opaque, bool ok, const char* error);
  void OnError(int code, const char* reason);

 private:
  KafkaSink(const KafkaTarget& target, EventCounter counted, std::chrono::milliseconds flush_timeout);
  void Poll();
  // Logs a failure once per episode (an episode ends at the next delivery).
  void Trouble(const char* what, const std::string& detail);

  const std::string spec_;
  const std::string topic_;
  const std::chrono::milliseconds flush_timeout_;
  EventCounter counted_;
  rd_kafka_s* rk_ = nullptr;
  std::atomic<bool> stop_{false};
  std::atomic<bool> troubled_{false};  // in a failure episode (logged already)
  std::once_flag flushed_;
  std::thread poller_;
};

}  // namespace ferry::monitoring::payload_log
