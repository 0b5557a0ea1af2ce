#pragma once

#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/clock.h"
#include "core/result.h"
#include "monitoring/drift/drift_evaluation.h"
#include "monitoring/drift/drift_metrics.h"
#include "monitoring/drift/drift_settings.h"
#include "monitoring/drift/drift_snapshot.h"
#include "monitoring/drift/reference_profile.h"
#include "monitoring/drift/sliding_window.h"
#include "monitoring/record_consumer.h"

namespace ferry::monitoring::drift {

// Online drift of a model's inputs and predictions against its reference profile, as a
// consumer of answered requests (docs/monitoring.md, "Reference profiles and drift").
//
// Attach reads the version's drift.* settings and, when drift.enabled is true, its
// profile (drift.profile, default <model dir>/profile.json); a bad setting or profile
// fails Attach with the setting or field named. Consume (or ConsumeRows, for a version
// taken as feature rows) adds each successful request's rows to the open step of the version's sliding window: per numeric feature and row one
// count in the reference's knots (FeatureSketch::ExactWindow, O(1)), per categorical
// one a category count. When a step closes (every window/steps rows, or window/steps of
// time, checked on Consume and Tick) the window is due for an evaluation: merged from
// its steps (counts added) and tested (EvaluateDrift: one test per feature and a
// correction across them), O(features · knots), no sort. The first is done
// at once, later ones at most once per drift.eval_interval (default 1 s; a busy stream
// seals steps far faster than anyone reads the result): a window due sooner waits for
// the next step or Tick past the interval, or is evaluated by SnapshotJson when asked.
// Results go to the metrics (when given a registry: rows are added to them at each
// step, evaluation and Tick, not per request) and to SnapshotJson.
//
// Thread-safety: all methods are thread-safe. Attach/Detach (load threads), Consume/
// Tick (the hub's thread) and SnapshotJson (HTTP threads) may run concurrently; a
// version's state has its own lock, held only for its own updates.
class DriftMonitor final : public RecordConsumer {
 public:
  struct Options {
    const Clock* clock = SystemClock::Get();  // not owned; outlives the monitor
    prometheus::Registry* registry = nullptr;  // not owned; null: no metrics
  };
  explicit DriftMonitor(Options options);
  ~DriftMonitor() override;

  Status Attach(const MonitoredModel& model) override;
  void Detach(std::string_view model, std::string_view version) override;
  bool Wants(std::string_view model, std::string_view version) const override;
  // Inputs when the profile has features, outputs when it has predictions; every request.
  TapDemand Demand(std::string_view model, std::string_view version) const override;
  void Consume(const InferenceRecord& record) override;
  // One lookup and one lock of the version's state for the run.
  void ConsumeBatch(std::span<const InferenceRecord* const> records) override;
  // A version whose features and predictions are all numeric is taken as feature rows:
  // the request threads copy its values out (RecordFeatures::AppendRows), and
  // ConsumeRows adds a block of them as Consume adds records (the same windows, steps and
  // counts). A version with a categorical feature gets null: records, as Demand says.
  std::shared_ptr<const FeatureRowExtractor> RowsFor(std::string_view model, std::string_view version) const override;
  void ConsumeRows(std::string_view model, std::string_view version, const FeatureRowExtractor& extractor,
                   const FeatureRowBlock& block) override;

  // Closes the time-window steps that are due (so an idle stream still slides), judges
  // a pending window whose eval_interval has passed, and adds the rows since the last
  // report to the metrics; the hub calls it every second.
  void Tick() override;

  // The JSON body for GET /v2/models/{model}[/versions/{version}]/monitoring; an empty
  // version means every monitored version of the model. NOT_FOUND when none is.
  Result<std::string> SnapshotJson(std::string_view model, std::string_view version) const;
  // The version's last evaluation (none before the first window closes, or when the
  // version is not monitored).
  std::optional<DriftEvaluation> LastEvaluation(std::string_view model, std::string_view version) const;

 private:
  struct VersionState;
  class Rows;
  using Key = std::pair<std::string, std::string>;
  std::shared_ptr<VersionState> Find(std::string_view model, std::string_view version) const;
  // Const: they change only the version's state, under its lock (SnapshotJson evaluates too).
  void MaybeAdvance(VersionState& state, uint64_t now) const;  // REQUIRES: state.mu
  void Evaluate(VersionState& state, uint64_t now) const;      // REQUIRES: state.mu
  void ReportRows(VersionState& state) const;                  // REQUIRES: state.mu
  void AddRecord(VersionState& state, const InferenceRecord& record, uint64_t now) const;  // REQUIRES: state.mu

  Options options_;
  std::unique_ptr<DriftMetrics> metrics_;
  mutable std::mutex mu_;
  std::map<Key, std::shared_ptr<VersionState>, std::less<>> versions_;  // guarded by mu_
};

}  // namespace ferry::monitoring::drift
