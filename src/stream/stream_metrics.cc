#include "stream/stream_metrics.h"

#include <prometheus/text_serializer.h>

namespace ferry::stream {

namespace {
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}
}  // namespace

StreamMetrics::StreamMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      in_(prometheus::BuildCounter()
              .Name("ferry_stream_messages_in_total")
              .Help("Messages read from an input topic")
              .Register(*registry_)),
      out_(prometheus::BuildCounter()
               .Name("ferry_stream_messages_out_total")
               .Help("Responses written to the output topic (produced; committed with their transaction in "
                     "exactly-once mode)")
               .Register(*registry_)),
      dead_(prometheus::BuildCounter()
                .Name("ferry_stream_messages_dead_lettered_total")
                .Help("Input messages written to the dead-letter topic, by input topic and failed stage")
                .Register(*registry_)),
      txns_(prometheus::BuildCounter()
                .Name("ferry_stream_transactions_total")
                .Help("Kafka transactions ended, by outcome (committed, aborted)")
                .Register(*registry_)),
      inference_(prometheus::BuildHistogram()
                     .Name("ferry_stream_inference_duration_seconds")
                     .Help("Time from submitting an inference request (one batch of messages) to its answer")
                     .Register(*registry_)
                     .Add({}, LatencyBuckets())),
      end_to_end_(prometheus::BuildHistogram()
                      .Name("ferry_stream_end_to_end_seconds")
                      .Help("Time from an input message's timestamp to its output being delivered to the broker")
                      .Register(*registry_)
                      .Add({}, LatencyBuckets())),
      lag_(prometheus::BuildGauge()
               .Name("ferry_stream_consumer_lag")
               .Help("Messages not yet committed in an assigned input partition (librdkafka statistics "
                     "consumer_lag)")
               .Register(*registry_)) {}

void StreamMetrics::MessagesIn(const std::string& topic, double n) { in_.Add({{"topic", topic}}).Increment(n); }
void StreamMetrics::MessagesOut(const std::string& topic, double n) { out_.Add({{"topic", topic}}).Increment(n); }
void StreamMetrics::DeadLettered(const std::string& topic, const std::string& stage, double n) {
  dead_.Add({{"topic", topic}, {"stage", stage}}).Increment(n);
}
void StreamMetrics::InferenceSeconds(double seconds) { inference_.Observe(seconds); }
void StreamMetrics::EndToEndSeconds(double seconds) { end_to_end_.Observe(seconds); }
void StreamMetrics::Transaction(const std::string& outcome) { txns_.Add({{"outcome", outcome}}).Increment(); }

void StreamMetrics::SetConsumerLag(const std::vector<PartitionLag>& lags) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::pair<std::string, int32_t>, prometheus::Gauge*> next;
  for (const auto& l : lags) {
    auto key = std::make_pair(l.topic, l.partition);
    auto it = lag_gauges_.find(key);
    prometheus::Gauge* g = it != lag_gauges_.end()
                               ? it->second
                               : &lag_.Add({{"topic", l.topic}, {"partition", std::to_string(l.partition)}});
    if (it != lag_gauges_.end()) lag_gauges_.erase(it);
    g->Set(static_cast<double>(l.lag));
    next.emplace(std::move(key), g);
  }
  for (auto& [key, g] : lag_gauges_) lag_.Remove(g);
  lag_gauges_ = std::move(next);
}

std::string StreamMetrics::Serialize() const { return prometheus::TextSerializer().Serialize(registry_->Collect()); }

}  // namespace ferry::stream
