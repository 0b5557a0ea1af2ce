#include "monitoring/outliers/outlier_monitor.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/log.h"
#include "monitoring/drift/record_features.h"

namespace ferry::monitoring::outliers {
namespace {

Status Bad(std::string_view name, const std::string& value, const std::string& why) {
  return InvalidArgument("monitoring.outliers." + std::string(name) + ": '" + value + "' " + why);
}

Result<bool> ParseBool(std::string_view name, const std::string& v) {
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return Bad(name, v, "is not true or false");
}

}  // namespace

struct OutlierMonitor::VersionState {
  VersionState(drift::ReferenceProfile p, OutlierScorer s) : profile(std::move(p)), scorer(std::move(s)) {
    for (const auto& f : profile.features) features.push_back(&f);
  }
  const drift::ReferenceProfile profile;
  const OutlierScorer scorer;
  std::vector<const drift::ProfileFeature*> features;
  double threshold = 0.01;
  bool return_score = false;
  prometheus::Counter* rows = nullptr;
  prometheus::Counter* outliers = nullptr;
};

OutlierMonitor::OutlierMonitor(prometheus::Registry* registry) {
  if (!registry) return;
  rows_family_ = &prometheus::BuildCounter()
                      .Name("ferry_outlier_rows_total")
                      .Help("Request rows given an outlier score against the model's reference profile")
                      .Register(*registry);
  outliers_family_ = &prometheus::BuildCounter()
                          .Name("ferry_outliers_total")
                          .Help("Request rows whose outlier p-value fell below monitoring.outliers.threshold")
                          .Register(*registry);
}

Status OutlierMonitor::Attach(const MonitoredModel& m) {
  static const std::set<std::string, std::less<>> kKnown = {"outliers.enabled", "outliers.threshold",
                                                             "outliers.return_score", "outliers.profile"};
  bool enabled = false, return_score = false, others = false;
  double threshold = 0.01;
  std::filesystem::path profile_path = m.model_dir / "profile.json";
  for (const auto& [key, value] : m.settings) {
    if (key.rfind("outliers.", 0) != 0) continue;
    if (!kKnown.count(key))
      return InvalidArgument("unknown setting 'monitoring." + key +
                             "' (outliers takes enabled, threshold, return_score, profile)");
    const std::string_view name = std::string_view(key).substr(9);
    if (name == "enabled") {
      FERRY_ASSIGN_OR_RETURN(enabled, ParseBool(name, value));
      continue;
    }
    others = true;
    if (name == "return_score") {
      FERRY_ASSIGN_OR_RETURN(return_score, ParseBool(name, value));
    } else if (name == "threshold") {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), threshold);
      if (ec != std::errc() || p != value.data() + value.size() || !(threshold > 0 && threshold < 1))
        return Bad(name, value, "is not a number between 0 and 1 (a p-value, e.g. 0.01)");
    } else {  // profile
      if (value.empty()) return Bad(name, value, "is empty");
      std::filesystem::path p(value);
      profile_path = p.is_absolute() ? p : m.model_dir / p;
    }
  }
  if (!enabled) {
    Detach(m.model, m.version);
    if (others) return InvalidArgument("monitoring.outliers.enabled: not true, so the other outliers settings have no effect");
    return Status::Ok();
  }
  auto profile = drift::ReadProfile(profile_path);
  if (!profile.ok())
    return InvalidArgument("monitoring.outliers.profile: " + profile.status().message() +
                           " (build one with 'ferry profile build')");
  auto scorer = OutlierScorer::Create(*profile);
  if (!scorer.ok()) return InvalidArgument("monitoring.outliers.profile: " + profile_path.string() + ": " +
                                           scorer.status().message());
  auto state = std::make_shared<VersionState>(std::move(profile).value(), std::move(scorer).value());
  state->threshold = threshold;
  state->return_score = return_score;
  if (rows_family_) {
    state->rows = &rows_family_->Add({{"model", m.model}, {"version", m.version}});
    state->outliers = &outliers_family_->Add({{"model", m.model}, {"version", m.version}});
  }
  FERRY_LOG(kInfo, "outlier scores", ("model", m.model)("version", m.version)("profile", profile_path.string())(
                                         "features", state->features.size())("threshold", threshold));
  std::lock_guard lock(mu_);
  versions_[m.model + "/" + m.version] = std::move(state);
  return Status::Ok();
}

void OutlierMonitor::Detach(std::string_view model, std::string_view version) {
  std::lock_guard lock(mu_);
  auto it = versions_.find(std::string(model) + "/" + std::string(version));
  if (it != versions_.end()) versions_.erase(it);
}

std::shared_ptr<const OutlierMonitor::VersionState> OutlierMonitor::Find(std::string_view model,
                                                                         std::string_view version) const {
  std::string key;
  key.reserve(model.size() + version.size() + 1);
  key.append(model).append("/").append(version);
  std::lock_guard lock(mu_);
  auto it = versions_.find(key);
  return it == versions_.end() ? nullptr : it->second;
}

bool OutlierMonitor::Annotates(std::string_view model, std::string_view version) const {
  return Find(model, version) != nullptr;
}

void OutlierMonitor::Annotate(std::string_view model, std::string_view version, const std::vector<Tensor>& inputs,
                              Parameters* response_parameters) {
  auto state = Find(model, version);
  if (!state) return;
  const OutlierScorer& scorer = state->scorer;
  // Per row: the smallest feature p, and which feature gave it.
  std::vector<std::pair<double, size_t>> worst;
  auto note = [&](size_t feature, uint64_t row, double p) {
    if (row >= worst.size()) worst.resize(row + 1, {1.0, 0});
    if (p < worst[row].first) worst[row] = {p, feature};
  };
  uint64_t unmapped = 0;
  drift::RecordFeatures::Visit(
      state->features, state->features.size(), inputs, {},
      [&](size_t f, uint64_t row, double x) { note(f, row, scorer.FeatureP(f, {x, {}, std::isnan(x)})); },
      [&](size_t f, uint64_t row, std::string_view v) { note(f, row, scorer.FeatureP(f, {0, v, v.empty()})); },
      &unmapped);
  if (worst.empty()) return;  // nothing of the profile in this request
  const double d = static_cast<double>(scorer.features());
  size_t flagged = 0;
  double best_p = 1;
  size_t best_feature = worst[0].second;
  for (const auto& [p, feature] : worst) {
    const double row_p = std::min(1.0, d * p);
    flagged += row_p < state->threshold;
    if (row_p < best_p) {
      best_p = row_p;
      best_feature = feature;
    }
  }
  if (state->rows) {
    state->rows->Increment(static_cast<double>(worst.size()));
    if (flagged) state->outliers->Increment(static_cast<double>(flagged));
  }
  if (!state->return_score) return;
  double score = -std::log10(std::max(best_p, std::numeric_limits<double>::min()));
  if (score == 0) score = 0;
  (*response_parameters)["outlier_score"] = score;
  (*response_parameters)["is_outlier"] = flagged > 0;
  (*response_parameters)["outlier_feature"] = scorer.feature_name(best_feature);
}

std::string OutlierMonitor::SummaryJson(std::string_view model, std::string_view version) const {
  auto state = Find(model, version);
  if (!state) return "";
  const double rows = state->rows ? state->rows->Value() : 0;
  const double outliers = state->outliers ? state->outliers->Value() : 0;
  char buf[256];
  std::snprintf(buf, sizeof buf, "{\"threshold\":%.17g,\"rows\":%.0f,\"outliers\":%.0f,\"rate\":%.17g}",
                state->threshold, rows, outliers, rows > 0 ? outliers / rows : 0.0);
  return buf;
}

Result<std::string> OutlierMonitor::AddToReport(std::string_view model, std::string_view version,
                                                Result<std::string> report) const {
  std::vector<std::string> versions;
  {
    std::lock_guard lock(mu_);
    const std::string prefix = std::string(model) + "/";
    for (auto it = versions_.lower_bound(prefix); it != versions_.end() && it->first.rfind(prefix, 0) == 0; ++it) {
      std::string v = it->first.substr(prefix.size());
      if (version.empty() || v == version) versions.push_back(std::move(v));
    }
  }
  if (versions.empty()) return report;
  rapidjson::Document doc;
  if (report.ok()) {
    doc.Parse(report->data(), report->size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("versions") || !doc["versions"].IsArray())
      return report;
  } else {
    if (report.status().code() != StatusCode::kNotFound) return report;
    doc.SetObject();
    doc.AddMember("model", rapidjson::Value(model.data(), static_cast<rapidjson::SizeType>(model.size()),
                                            doc.GetAllocator()),
                  doc.GetAllocator());
    doc.AddMember("versions", rapidjson::Value(rapidjson::kArrayType), doc.GetAllocator());
  }
  auto& a = doc.GetAllocator();
  rapidjson::Value& list = doc["versions"];
  for (const std::string& v : versions) {
    rapidjson::Document summary;
    summary.Parse(SummaryJson(model, v).c_str());
    if (summary.HasParseError()) continue;
    rapidjson::Value* slot = nullptr;
    for (auto& e : list.GetArray())
      if (e.IsObject() && e.HasMember("version") && e["version"].IsString() && v == e["version"].GetString()) slot = &e;
    if (!slot) {
      rapidjson::Value e(rapidjson::kObjectType);
      e.AddMember("version", rapidjson::Value(v.c_str(), a), a);
      list.PushBack(e, a);
      slot = &list[list.Size() - 1];
    }
    slot->AddMember("outliers", rapidjson::Value(summary, a), a);
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  doc.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace ferry::monitoring::outliers
