#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ferry::monitoring::quality {

// The feedback and quality series in a Prometheus registry (docs/metrics.md, "Model
// monitoring"). Labels are bounded: model, version, and a fixed set of result, reason
// and metric names.
// Thread-safety: all methods are thread-safe.
class QualitySeries {
 public:
  explicit QualitySeries(prometheus::Registry& registry);

  // Creates a version's counters at 0 (every result and reason) when it is attached, so
  // that the first unknown id or eviction is an increase a rule's rate() sees.
  void Attached(const std::string& model, const std::string& version);
  // result: joined | unknown | expired | evicted | duplicate.
  void Feedback(const std::string& model, const std::string& version, std::string_view result, uint64_t n);
  // reason: evicted | expired | unreadable.
  void Dropped(const std::string& model, const std::string& version, std::string_view reason, uint64_t n);
  void Pending(const std::string& model, const std::string& version, double n);
  // A realised (from feedback) or estimated (CBPE) metric; none removes its series.
  void Quality(const std::string& model, const std::string& version, const std::string& metric, bool estimated,
               std::optional<double> value);
  void Remove(const std::string& model, const std::string& version);

 private:
  using Key = std::pair<std::string, std::string>;
  prometheus::Family<prometheus::Counter>& feedback_;
  prometheus::Family<prometheus::Counter>& dropped_;
  prometheus::Family<prometheus::Gauge>& pending_;
  prometheus::Family<prometheus::Gauge>& quality_;
  prometheus::Family<prometheus::Gauge>& estimated_;
  std::mutex mu_;
  // Every series made for a version, so Remove can drop them.
  std::map<Key, std::map<std::string, prometheus::Counter*>> counters_;  // guarded by mu_
  std::map<Key, std::map<std::string, prometheus::Gauge*>> gauges_;      // guarded by mu_
};

}  // namespace ferry::monitoring::quality
