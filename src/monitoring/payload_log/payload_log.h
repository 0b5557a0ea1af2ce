#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include "monitoring/payload_log/file_sink.h"
#include "monitoring/payload_log/http_sink.h"
#include "monitoring/payload_log/kafka_sink.h"
#include "monitoring/payload_log/payload_events.h"
#include "monitoring/payload_log/payload_sink.h"
#include "monitoring/record_consumer.h"
#include "monitoring/request_sampling.h"

namespace ferry::monitoring::payload_log {

// The settings prefix the payload log owns: monitoring.payload_log.* in a model config.
inline constexpr std::string_view kSettingsPrefix = "payload_log";

// Server-wide settings of the sinks (a sink is shared by every version that names it,
// so its tuning is not per model).
struct PayloadLogOptions {
  std::string source = "ferry://localhost";  // CloudEvents source prefix
  FileSinkOptions file;
  HttpSinkOptions http;
  KafkaSinkOptions kafka;  // used in builds with FERRY_WITH_KAFKA
  HttpPoster http_poster;  // tests; empty: a real POST
};


// Payload logging as a RecordConsumer: each version's answered requests, sampled by
// request id, as CloudEvents (payload_events.h) written to the version's sink.
//
// Settings (MonitoredModel::settings, from monitoring.payload_log.* in the config over
// the command line's defaults):
//   payload_log.sink              file:PATH (JSON Lines, rotated) | http://HOST[:PORT]/PATH
//                                 (batched POSTs) | kafka://BROKERS/TOPIC (CloudEvents'
//                                 Kafka binding; builds with FERRY_WITH_KAFKA) | kafka
//                                 (with the two settings below) | none. Unset or none:
//                                 not logged.
//   payload_log.kafka.brokers     with sink kafka: HOST:PORT[,HOST:PORT...]
//   payload_log.kafka.topic       with sink kafka: the topic
//   payload_log.sample_rate       0..1, default 1: the share of requests logged.
//   payload_log.mode              all (default) | request | response.
//   payload_log.max_tensor_bytes  raw bytes logged per tensor, default 65536; larger
//                                 tensors are truncated and marked.
// Metrics: ferry_payload_log_events_total{model,version,result} (result written,
// dropped, failed).
// Thread-safety: as RecordConsumer (Attach/Detach on load threads, the rest on the
// hub's thread); a mutex guards the versions' settings.
class PayloadLog final : public RecordConsumer {
 public:
  // `registry` (not owned; may be null) receives the metrics.
  PayloadLog(PayloadLogOptions options, prometheus::Registry* registry);
  ~PayloadLog() override;

  Status Attach(const MonitoredModel& model) override;
  void Detach(std::string_view model, std::string_view version) override;
  bool Wants(std::string_view model, std::string_view version) const override;
  // The tensors its mode logs, and its sample rate (so the request path builds no
  // record for a request it would not log).
  TapDemand Demand(std::string_view model, std::string_view version) const override;
  void Consume(const InferenceRecord& record) override;
  // One lookup for the run, then the sampled records' events to the sink and EndBatch.
  void ConsumeBatch(std::span<const InferenceRecord* const> records) override;
  void Flush() override;

 private:
  struct VersionLog {
    PayloadSink* sink = nullptr;  // owned by sinks_
    double sample_rate = 1;
    EventOptions events;
  };
  using VersionMap = std::map<std::string, std::shared_ptr<const VersionLog>, std::less<>>;

  std::shared_ptr<const VersionLog> Find(std::string_view model, std::string_view version) const;
  Result<PayloadSink*> SinkFor(const std::string& spec);
  void Count(const CloudEvent& event, EventResult result);

  const PayloadLogOptions options_;
  prometheus::Family<prometheus::Counter>* events_family_ = nullptr;

  mutable std::mutex mu_;
  std::map<std::string, VersionMap, std::less<>> versions_;  // model -> version -> log; guarded by mu_
  // Sinks by spec, created on first use and kept until Flush / destruction.
  std::map<std::string, std::unique_ptr<PayloadSink>> sinks_;  // guarded by mu_

  std::mutex counters_mu_;
  std::map<std::tuple<std::string, std::string, EventResult>, prometheus::Counter*> counters_;  // guarded by counters_mu_
};

}  // namespace ferry::monitoring::payload_log
