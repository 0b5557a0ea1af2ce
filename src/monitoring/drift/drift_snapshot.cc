#include "monitoring/drift/drift_snapshot.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

namespace ferry::monitoring::drift {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, const std::string& s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void Num(Writer& w, double v) {
  if (std::isfinite(v)) {
    w.Double(v);
  } else {
    w.Null();
  }
}

void WriteFeature(Writer& w, const FeatureDrift& f) {
  w.StartObject();
  w.Key("name");
  Str(w, f.name);
  w.Key("role");
  w.String(f.prediction ? "prediction" : "input");
  w.Key("type");
  w.String(f.kind == FeatureKind::kNumeric ? "numeric" : "categorical");
  w.Key("test");
  w.String(std::string(DriftTestName(f.test)).c_str());
  w.Key("statistic");
  Num(w, f.statistic);
  w.Key("p_value");
  if (f.p_value) {
    Num(w, *f.p_value);
  } else {
    w.Null();
  }
  w.Key("drift");
  w.Bool(f.drift);
  w.Key("rows");
  w.Uint64(f.rows);
  w.Key("missing_rate");
  w.StartObject();
  w.Key("reference");
  Num(w, f.missing_rate_reference);
  w.Key("current");
  Num(w, f.missing_rate_current);
  w.EndObject();
  w.Key("histogram");
  w.StartObject();
  if (f.kind == FeatureKind::kNumeric) {
    w.Key("edges");
    w.StartArray();
    for (double e : f.edges) Num(w, e);
    w.EndArray();
  } else {
    w.Key("categories");
    w.StartArray();
    for (const auto& c : f.categories) Str(w, c);
    w.String("__other__");
    w.EndArray();
  }
  w.Key("reference");
  w.StartArray();
  for (uint64_t c : f.reference_counts) w.Uint64(c);
  w.EndArray();
  w.Key("current");
  w.StartArray();
  for (uint64_t c : f.current_counts) w.Uint64(c);
  w.EndArray();
  w.EndObject();
  w.EndObject();
}

}  // namespace

std::string DriftSnapshotJson(const std::string& model, const std::vector<DriftSnapshot>& versions) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("model");
  Str(w, model);
  w.Key("versions");
  w.StartArray();
  for (const DriftSnapshot& s : versions) {
    w.StartObject();
    w.Key("version");
    Str(w, s.version);
    w.Key("drift");
    w.StartObject();
    w.Key("window");
    w.StartObject();
    if (s.settings.window_is_time) {
      w.Key("seconds");
      w.Double(static_cast<double>(s.settings.window_ns) / 1e9);
    } else {
      w.Key("rows");
      w.Uint64(s.settings.window_rows);
    }
    w.Key("steps");
    w.Uint(s.settings.buckets);
    w.EndObject();
    w.Key("eval_interval_seconds");
    w.Double(static_cast<double>(s.settings.eval_interval_ns) / 1e9);
    w.Key("alpha");
    w.Double(s.settings.test.alpha);
    w.Key("correction");
    w.String(std::string(CorrectionName(s.settings.test.correction)).c_str());
    w.Key("rows_total");
    w.Uint64(s.rows_total);
    w.Key("unmapped_total");
    w.Uint64(s.unmapped_total);
    w.Key("evaluations");
    w.Uint64(s.evaluations);
    w.Key("alarms");
    w.Uint64(s.alarms);
    w.Key("last");
    if (!s.last) {
      w.Null();
    } else {
      const DriftEvaluation& ev = *s.last;
      w.StartObject();
      w.Key("evaluated_at_ms");
      w.Uint64(s.evaluated_wall_ms);
      w.Key("window_rows");
      w.Uint64(ev.window_rows);
      w.Key("drift");
      w.Bool(ev.drift);
      w.Key("features_drifted");
      w.Uint64(ev.drifted);
      w.Key("threshold");
      Num(w, ev.threshold);
      w.Key("features");
      w.StartArray();
      for (const auto& f : ev.features) WriteFeature(w, f);
      w.EndArray();
      w.EndObject();
    }
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace ferry::monitoring::drift
