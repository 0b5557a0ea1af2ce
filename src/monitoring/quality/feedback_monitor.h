#pragma once

#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "core/clock.h"
#include "core/result.h"
#include "monitoring/quality/feedback_settings.h"
#include "monitoring/quality/quality_series.h"
#include "monitoring/record_consumer.h"

namespace ferry::monitoring::quality {

// What POST .../feedback answers: the JSON body, and whether every item was joined
// (the HTTP handler answers 200 then, else 400 with the same body, whose "error" names
// the first item that was not).
struct FeedbackReply {
  std::string json;
  bool all_joined = true;
};

// Ground-truth feedback and live quality (docs/monitoring.md, "Ground-truth feedback
// and live quality"), as a consumer of answered requests.
//
// Consume keeps each successful request's prediction (the output named by
// feedback.output, else the first) by request id in the version's PredictionStore
// (bounded, with a TTL). Feedback joins true values with them; each joined row enters
// the version's quality window, whose metrics (ClassificationQuality or
// RegressionQuality) are recomputed on Tick when it changed and on SnapshotJson. For a
// binary classifier answering probabilities, every prediction's positive-class
// probability also enters an estimation window, from which CBPE estimates the quality
// no label has been seen for yet.
//
// Costs: Consume copies the prediction output (rows x width doubles) into the store;
// a window's metrics cost O(n log n) in its rows n, on the hub's thread (Tick) or the
// HTTP thread that asks.
//
// Thread-safety: all methods are thread-safe. Attach/Detach (load threads), Consume/
// Tick (the hub's thread), Feedback and SnapshotJson (HTTP threads) may run
// concurrently; each version has its own lock, never held across another's.
class FeedbackMonitor final : public RecordConsumer {
 public:
  struct Options {
    const Clock* clock = SystemClock::Get();   // not owned; outlives the monitor
    prometheus::Registry* registry = nullptr;  // not owned; null: no metrics
    size_t max_items = 10000;                  // feedback items per POST
  };
  static constexpr std::string_view kSettingsPrefix = "feedback";

  explicit FeedbackMonitor(Options options);
  ~FeedbackMonitor() override;

  Status Attach(const MonitoredModel& model) override;
  void Detach(std::string_view model, std::string_view version) override;
  bool Wants(std::string_view model, std::string_view version) const override;
  // The answers only (the prediction joined with feedback by request id).
  TapDemand Demand(std::string_view model, std::string_view version) const override;
  void Consume(const InferenceRecord& record) override;
  void Tick() override;

  // Joins the body's true values with the stored predictions of the model's version
  // (an empty version: whichever monitored version answered each id). INVALID_ARGUMENT
  // naming the field for a malformed body or a target that does not fit its prediction
  // (then nothing of the body is joined), or when the model has no feedback monitoring.
  Result<FeedbackReply> Feedback(std::string_view model, std::string_view version, std::string_view body);

  // The "feedback" and "quality" JSON of GET .../monitoring: {"model", "versions": [{
  // "version", "feedback": {...}, "quality": {...}}]}; NOT_FOUND when no version of the
  // model has feedback monitoring.
  Result<std::string> SnapshotJson(std::string_view model, std::string_view version) const;

 private:
  struct VersionState;
  using Key = std::pair<std::string, std::string>;
  std::shared_ptr<VersionState> Find(std::string_view model, std::string_view version) const;
  void Publish(VersionState& state);  // REQUIRES: state.mu

  Options options_;
  std::unique_ptr<QualitySeries> series_;
  mutable std::mutex mu_;
  std::map<Key, std::shared_ptr<VersionState>, std::less<>> versions_;  // guarded by mu_
};

}  // namespace ferry::monitoring::quality
