#include "monitoring/drift/drift_metrics.h"

#include <array>

namespace ferry::monitoring::drift {

DriftMetrics::DriftMetrics(prometheus::Registry& registry)
    : score_(prometheus::BuildGauge()
                 .Name("ferry_drift_score")
                 .Help("Drift statistic of a feature in the last evaluated window (KS D, chi-square X2 or PSI)")
                 .Register(registry)),
      p_value_(prometheus::BuildGauge()
                   .Name("ferry_drift_p_value")
                   .Help("p-value of a feature's drift test in the last evaluated window (before correction)")
                   .Register(registry)),
      feature_detected_(prometheus::BuildGauge()
                            .Name("ferry_drift_feature_detected")
                            .Help("1 when a feature drifted in the last evaluated window (after correction)")
                            .Register(registry)),
      detected_(prometheus::BuildGauge()
                    .Name("ferry_drift_detected")
                    .Help("1 when any feature of the version drifted in the last evaluated window")
                    .Register(registry)),
      drifted_(prometheus::BuildGauge()
                   .Name("ferry_drift_features_drifted")
                   .Help("Features (and predictions) flagged in the last evaluated window")
                   .Register(registry)),
      window_(prometheus::BuildGauge()
                  .Name("ferry_drift_window_size")
                  .Help("Rows in the last evaluated window")
                  .Register(registry)),
      evaluated_at_(prometheus::BuildGauge()
                        .Name("ferry_drift_last_evaluation_timestamp_seconds")
                        .Help("When the version's window was last evaluated (Unix time; 0 before the first)")
                        .Register(registry)),
      rows_(prometheus::BuildCounter()
                .Name("ferry_drift_rows_total")
                .Help("Rows added to the drift sketches")
                .Register(registry)),
      evaluations_(prometheus::BuildCounter()
                       .Name("ferry_drift_evaluations_total")
                       .Help("Windows evaluated against the reference profile")
                       .Register(registry)),
      alarms_(prometheus::BuildCounter()
                  .Name("ferry_drift_alarms_total")
                  .Help("Evaluated windows in which drift was detected")
                  .Register(registry)) {}

DriftMetrics::VersionSeries& DriftMetrics::SeriesFor(const std::string& model, const std::string& version) {
  auto [it, inserted] = versions_.try_emplace({model, version});
  VersionSeries& s = it->second;
  if (inserted) {
    const prometheus::Labels labels{{"model", model}, {"version", version}};
    s.rows = &rows_.Add(labels);
    s.evaluations = &evaluations_.Add(labels);
    s.alarms = &alarms_.Add(labels);
    s.window = &window_.Add(labels);
    s.detected = &detected_.Add(labels);
    s.drifted = &drifted_.Add(labels);
    s.evaluated_at = &evaluated_at_.Add(labels);
  }
  return s;
}

void DriftMetrics::Attached(const std::string& model, const std::string& version) {
  std::lock_guard lock(mu_);
  SeriesFor(model, version);
}

void DriftMetrics::Rows(const std::string& model, const std::string& version, uint64_t rows) {
  std::lock_guard lock(mu_);
  SeriesFor(model, version).rows->Increment(static_cast<double>(rows));
}

void DriftMetrics::Evaluated(const std::string& model, const std::string& version, const DriftEvaluation& evaluation,
                             const DriftOptions& options, uint32_t top_k, uint64_t evaluated_wall_ms) {
  std::lock_guard lock(mu_);
  VersionSeries& s = SeriesFor(model, version);
  s.evaluations->Increment();
  s.evaluated_at->Set(static_cast<double>(evaluated_wall_ms) / 1e3);
  if (evaluation.drift) s.alarms->Increment();
  s.window->Set(static_cast<double>(evaluation.window_rows));
  s.detected->Set(evaluation.drift ? 1 : 0);
  s.drifted->Set(static_cast<double>(evaluation.drifted));

  const std::vector<size_t> order = RankBySeverity(evaluation, options);
  std::set<std::pair<std::string, std::string>> keep;
  for (size_t r = 0; r < order.size() && r < top_k; ++r) {
    const FeatureDrift& f = evaluation.features[order[r]];
    std::pair<std::string, std::string> key{f.name, f.prediction ? "prediction" : "input"};
    keep.insert(key);
    auto [it, inserted] = s.features.try_emplace(key);
    auto& g = it->second;
    if (inserted) {
      const prometheus::Labels labels{{"model", model}, {"version", version}, {"feature", f.name}, {"role", key.second}};
      g = {&score_.Add(labels), nullptr, &feature_detected_.Add(labels)};
      if (f.p_value) g[1] = &p_value_.Add(labels);
    }
    g[0]->Set(f.statistic);
    if (g[1] && f.p_value) g[1]->Set(*f.p_value);
    g[2]->Set(f.drift ? 1 : 0);
  }
  for (auto it = s.features.begin(); it != s.features.end();) {
    if (keep.count(it->first)) {
      ++it;
      continue;
    }
    score_.Remove(it->second[0]);
    if (it->second[1]) p_value_.Remove(it->second[1]);
    feature_detected_.Remove(it->second[2]);
    it = s.features.erase(it);
  }
}

void DriftMetrics::Remove(const std::string& model, const std::string& version) {
  std::lock_guard lock(mu_);
  auto it = versions_.find({model, version});
  if (it == versions_.end()) return;
  VersionSeries& s = it->second;
  for (auto& [key, g] : s.features) {
    score_.Remove(g[0]);
    if (g[1]) p_value_.Remove(g[1]);
    feature_detected_.Remove(g[2]);
  }
  rows_.Remove(s.rows);
  evaluations_.Remove(s.evaluations);
  alarms_.Remove(s.alarms);
  window_.Remove(s.window);
  detected_.Remove(s.detected);
  drifted_.Remove(s.drifted);
  evaluated_at_.Remove(s.evaluated_at);
  versions_.erase(it);
}

}  // namespace ferry::monitoring::drift
