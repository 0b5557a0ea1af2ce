#include "monitoring/quality/quality_series.h"

namespace ferry::monitoring::quality {

QualitySeries::QualitySeries(prometheus::Registry& registry)
    : feedback_(prometheus::BuildCounter()
                    .Name("ferry_feedback_total")
                    .Help("Feedback items (true values) received, by how their join ended")
                    .Register(registry)),
      dropped_(prometheus::BuildCounter()
                   .Name("ferry_feedback_predictions_dropped_total")
                   .Help("Predictions that left the feedback store unjoined (evicted, expired) or could not be kept "
                         "(unreadable output)")
                   .Register(registry)),
      pending_(prometheus::BuildGauge()
                   .Name("ferry_feedback_pending")
                   .Help("Predictions waiting for feedback")
                   .Register(registry)),
      quality_(prometheus::BuildGauge()
                   .Name("ferry_model_quality")
                   .Help("Model quality over the window of joined feedback (accuracy, f1, roc_auc, rmse, ...)")
                   .Register(registry)),
      estimated_(prometheus::BuildGauge()
                     .Name("ferry_model_quality_estimated")
                     .Help("Label-free (CBPE) estimate of a binary classifier's quality over the window of predictions")
                     .Register(registry)) {}

void QualitySeries::Attached(const std::string& model, const std::string& version) {
  for (std::string_view result : {"joined", "unknown", "expired", "evicted", "duplicate"})
    Feedback(model, version, result, 0);
  for (std::string_view reason : {"evicted", "expired", "unreadable"}) Dropped(model, version, reason, 0);
  Pending(model, version, 0);
}

void QualitySeries::Feedback(const std::string& model, const std::string& version, std::string_view result,
                             uint64_t n) {
  std::lock_guard lock(mu_);
  auto& c = counters_[{model, version}]["f:" + std::string(result)];
  if (c == nullptr) c = &feedback_.Add({{"model", model}, {"version", version}, {"result", std::string(result)}});
  c->Increment(static_cast<double>(n));
}

void QualitySeries::Dropped(const std::string& model, const std::string& version, std::string_view reason,
                            uint64_t n) {
  std::lock_guard lock(mu_);
  auto& c = counters_[{model, version}]["d:" + std::string(reason)];
  if (c == nullptr) c = &dropped_.Add({{"model", model}, {"version", version}, {"reason", std::string(reason)}});
  c->Increment(static_cast<double>(n));
}

void QualitySeries::Pending(const std::string& model, const std::string& version, double n) {
  std::lock_guard lock(mu_);
  auto& g = gauges_[{model, version}]["pending"];
  if (g == nullptr) g = &pending_.Add({{"model", model}, {"version", version}});
  g->Set(n);
}

void QualitySeries::Quality(const std::string& model, const std::string& version, const std::string& metric,
                            bool estimated, std::optional<double> value) {
  std::lock_guard lock(mu_);
  auto& gauges = gauges_[{model, version}];
  const std::string key = (estimated ? "e:" : "q:") + metric;
  auto it = gauges.find(key);
  auto& family = estimated ? estimated_ : quality_;
  if (!value) {
    if (it != gauges.end()) {
      family.Remove(it->second);
      gauges.erase(it);
    }
    return;
  }
  if (it == gauges.end())
    it = gauges.emplace(key, &family.Add({{"model", model}, {"version", version}, {"metric", metric}})).first;
  it->second->Set(*value);
}

void QualitySeries::Remove(const std::string& model, const std::string& version) {
  std::lock_guard lock(mu_);
  const Key key{model, version};
  for (auto& [name, c] : counters_[key]) (name[0] == 'f' ? feedback_ : dropped_).Remove(c);
  for (auto& [name, g] : gauges_[key]) {
    if (name == "pending") {
      pending_.Remove(g);
    } else {
      (name[0] == 'e' ? estimated_ : quality_).Remove(g);
    }
  }
  counters_.erase(key);
  gauges_.erase(key);
}

}  // namespace ferry::monitoring::quality
