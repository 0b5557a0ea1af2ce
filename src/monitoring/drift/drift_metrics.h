#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "monitoring/drift/drift_evaluation.h"

namespace ferry::monitoring::drift {

// The drift series in a Prometheus registry (names, types and labels in
// docs/metrics.md). Per-feature series are kept for at most `top_k` features of a
// version, the most drifted ones of its last evaluation; a feature that leaves the top
// k has its series removed, so a version costs at most 3·top_k + 7 series whatever its
// width.
// Thread-safety: all methods are thread-safe.
class DriftMetrics {
 public:
  explicit DriftMetrics(prometheus::Registry& registry);

  // Creates the version's series at 0 when it is attached, so that the first window's
  // evaluation is an increase a rule's rate() or increase() can see.
  void Attached(const std::string& model, const std::string& version);
  void Rows(const std::string& model, const std::string& version, uint64_t rows);
  // `evaluated_wall_ms`: when (Unix ms), for ferry_drift_last_evaluation_timestamp_seconds.
  void Evaluated(const std::string& model, const std::string& version, const DriftEvaluation& evaluation,
                 const DriftOptions& options, uint32_t top_k, uint64_t evaluated_wall_ms);
  // Drops every series of the version.
  void Remove(const std::string& model, const std::string& version);

 private:
  struct VersionSeries {
    prometheus::Counter* rows = nullptr;
    prometheus::Counter* evaluations = nullptr;
    prometheus::Counter* alarms = nullptr;
    prometheus::Gauge* window = nullptr;
    prometheus::Gauge* detected = nullptr;
    prometheus::Gauge* drifted = nullptr;
    prometheus::Gauge* evaluated_at = nullptr;
    // feature label -> its gauges (p_value may be null for PSI)
    std::map<std::pair<std::string, std::string>, std::array<prometheus::Gauge*, 3>> features;
  };
  VersionSeries& SeriesFor(const std::string& model, const std::string& version);  // REQUIRES: mu_

  prometheus::Family<prometheus::Gauge>& score_;
  prometheus::Family<prometheus::Gauge>& p_value_;
  prometheus::Family<prometheus::Gauge>& feature_detected_;
  prometheus::Family<prometheus::Gauge>& detected_;
  prometheus::Family<prometheus::Gauge>& drifted_;
  prometheus::Family<prometheus::Gauge>& window_;
  prometheus::Family<prometheus::Gauge>& evaluated_at_;
  prometheus::Family<prometheus::Counter>& rows_;
  prometheus::Family<prometheus::Counter>& evaluations_;
  prometheus::Family<prometheus::Counter>& alarms_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, VersionSeries> versions_;  // guarded by mu_
};

}  // namespace ferry::monitoring::drift
