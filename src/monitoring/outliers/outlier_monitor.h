#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include "monitoring/outliers/outlier_score.h"
#include "monitoring/record_consumer.h"
#include "monitoring/response_annotator.h"

namespace ferry::monitoring::outliers {

// Per-request outlier scores (OutlierScorer) for the versions that turn them on.
//
// Settings (monitoring.outliers.* in a model's config):
//   outliers.enabled       true | false (default false)
//   outliers.threshold     a row is an outlier when its p-value is below this; (0, 1),
//                          default 0.01: the share of reference-like rows flagged is at
//                          most this
//   outliers.return_score  true | false (default false): the response's parameters get
//                          outlier_score (the largest row score, -log10 p), is_outlier
//                          (any row flagged) and outlier_feature (the feature with the
//                          smallest p in the worst row)
//   outliers.profile       the reference profile, default <model dir>/profile.json
//                          (`ferry profile build`), as drift's
// Metrics: ferry_outlier_rows_total{model,version} (rows scored) and
// ferry_outliers_total{model,version} (rows flagged).
//
// A RecordConsumer only for its settings (Attach/Detach through the monitoring hub; it
// wants no records); the scoring is a ResponseAnnotator, on the request path.
// Thread-safety: Attach/Detach on load threads, Wants/Annotate/Rate on any thread; a
// mutex guards the map of versions, whose entries are immutable.
class OutlierMonitor final : public RecordConsumer, public ResponseAnnotator {
 public:
  explicit OutlierMonitor(prometheus::Registry* registry);

  Status Attach(const MonitoredModel& model) override;
  void Detach(std::string_view model, std::string_view version) override;
  // No records: the scoring happens on the request path.
  bool Wants(std::string_view, std::string_view) const override { return false; }
  void Consume(const InferenceRecord&) override {}

  bool Annotates(std::string_view model, std::string_view version) const override;

  void Annotate(std::string_view model, std::string_view version, const std::vector<Tensor>& inputs,
                Parameters* response_parameters) override;

  // For the monitoring JSON: {"threshold":..,"rows":..,"outliers":..,"rate":..}; empty
  // when the version has outliers off.
  std::string SummaryJson(std::string_view model, std::string_view version) const;
  // GET .../monitoring: `report` (drift's {"model":..,"versions":[{"version":..,
  // "drift":{..}}]}, or its NOT_FOUND) with an "outliers" summary in each version that
  // has outlier scores on (all versions of the model when `version` is empty).
  Result<std::string> AddToReport(std::string_view model, std::string_view version, Result<std::string> report) const;

 private:
  struct VersionState;
  std::shared_ptr<const VersionState> Find(std::string_view model, std::string_view version) const;

  prometheus::Family<prometheus::Counter>* rows_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* outliers_family_ = nullptr;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const VersionState>, std::less<>> versions_;  // "model/version"; guarded by mu_
};

}  // namespace ferry::monitoring::outliers
