#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "stream/consumer_lag.h"

namespace ferry::stream {

// ferry stream's own Prometheus metrics (the server's model metrics are exported beside
// them): messages in, out and dead-lettered per topic, inference latency, end-to-end
// latency (from the input message's timestamp to its output's delivery), transactions
// by outcome, and consumer lag per assigned partition from librdkafka's statistics.
// Thread-safety: all methods are thread-safe.
class StreamMetrics {
 public:
  StreamMetrics();

  void MessagesIn(const std::string& topic, double n);
  void MessagesOut(const std::string& topic, double n);
  // `stage` is "decode" or "inference".
  void DeadLettered(const std::string& topic, const std::string& stage, double n);
  void InferenceSeconds(double seconds);
  void EndToEndSeconds(double seconds);
  // `outcome` is "committed" or "aborted".
  void Transaction(const std::string& outcome);
  // Replaces the lag gauges with `lags` (partitions no longer listed lose theirs).
  void SetConsumerLag(const std::vector<PartitionLag>& lags);

  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& in_;
  prometheus::Family<prometheus::Counter>& out_;
  prometheus::Family<prometheus::Counter>& dead_;
  prometheus::Family<prometheus::Counter>& txns_;
  prometheus::Histogram& inference_;
  prometheus::Histogram& end_to_end_;
  prometheus::Family<prometheus::Gauge>& lag_;
  std::mutex mu_;  // guards lag_gauges_
  std::map<std::pair<std::string, int32_t>, prometheus::Gauge*> lag_gauges_;
};

}  // namespace ferry::stream
