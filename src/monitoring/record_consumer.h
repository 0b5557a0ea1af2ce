#pragma once

#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "monitoring/feature_rows.h"
#include "monitoring/inference_tap.h"

namespace ferry::monitoring {

// A loaded model version as monitoring sees it, handed to every consumer when the
// version becomes ready.
struct MonitoredModel {
  std::string model;
  std::string version;
  // The model's folder (where e.g. its reference profile lives).
  std::filesystem::path model_dir;
  // Its monitoring settings: the config's parameters whose keys start with
  // "monitoring.", with that prefix removed (e.g. "payload_log.sample_rate" -> "0.1"),
  // laid over the server-wide defaults from the command line.
  std::map<std::string, std::string, std::less<>> settings;
};

// One part of model monitoring (the payload log, drift, the feedback join) fed with
// answered requests by the monitoring hub, which owns the bounded queue between the
// request path and the consumers.
// Thread-safety: Attach and Detach are called on model-load threads, Consume, Tick and
// Flush on the hub's one background thread; an implementation synchronises between the two.
// None of them runs on a request thread.
class RecordConsumer {
 public:
  virtual ~RecordConsumer() = default;
  // Starts monitoring a version with its settings; an error names the setting (the
  // version then loads without this consumer, and the error is logged and shown).
  virtual Status Attach(const MonitoredModel& model) = 0;
  // Stops monitoring a version (unloaded or replaced); its state may be dropped.
  virtual void Detach(std::string_view model, std::string_view version) = 0;
  // Whether this consumer wants records of the version at all (cheap).
  virtual bool Wants(std::string_view model, std::string_view version) const = 0;
  // What of them it reads (cheap; asked when the version is attached, not per request).
  // The default: all of every record it wants. A consumer that samples says its rate
  // and must then take only requests that Sampled() at that rate.
  virtual TapDemand Demand(std::string_view model, std::string_view version) const {
    const bool w = Wants(model, version);
    return {w, w, w, 1.0};
  }
  // One answered request of a version it wanted when the record was offered (it may
  // have detached the version since: then it ignores the record).
  virtual void Consume(const InferenceRecord& record) = 0;
  // A run of answered requests of one version, in the order they were offered (the hub
  // hands over a batch as runs per version, so that a consumer looks its version up and
  // takes its lock once per run rather than per record). The default: Consume each.
  virtual void ConsumeBatch(std::span<const InferenceRecord* const> records) {
    for (const InferenceRecord* r : records) Consume(*r);
  }
  // A consumer that reads only numbers of a version's successful requests may take them
  // as feature rows instead of records: an extractor (made when the version was
  // attached) that the request threads run, whose blocks reach ConsumeRows. The hub then
  // builds no record for the consumer (its Demand is not asked). null (the default):
  // records, as Demand says.
  virtual std::shared_ptr<const FeatureRowExtractor> RowsFor(std::string_view /*model*/,
                                                             std::string_view /*version*/) const {
    return nullptr;
  }
  // A block of the version's rows, made by `extractor` (RowsFor's when the requests were
  // answered: a consumer that re-attached the version since ignores the block).
  virtual void ConsumeRows(std::string_view /*model*/, std::string_view /*version*/,
                           const FeatureRowExtractor& /*extractor*/, const FeatureRowBlock& /*block*/) {}
  // Called about once a second on the hub's thread, records or not (e.g. so that
  // time windows slide while a model is idle).
  virtual void Tick() {}
  // Writes out whatever is buffered (on shutdown, after the last Consume).
  virtual void Flush() {}
};

}  // namespace ferry::monitoring
