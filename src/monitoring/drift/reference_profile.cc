#include "monitoring/drift/reference_profile.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace ferry::monitoring::drift {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void WriteFeature(Writer& w, const ProfileFeature& f) {
  const FeatureSketch& s = f.sketch;
  w.StartObject();
  w.Key("name");
  WriteString(w, f.name);
  w.Key("type");
  WriteString(w, FeatureKindName(s.kind));
  w.Key("tensor");
  WriteString(w, f.tensor);
  w.Key("index");
  w.Uint(f.index);
  w.Key("rows");
  w.Uint64(s.rows);
  w.Key("missing");
  w.Uint64(s.missing);
  if (s.kind == FeatureKind::kNumeric) {
    const KllSketch& q = s.quantiles;
    w.Key("sketch");
    w.StartObject();
    w.Key("kind");
    w.String("kll");
    w.Key("k");
    w.Uint(q.k());
    w.Key("n");
    w.Uint64(q.count());
    w.Key("min");
    w.Double(q.empty() ? 0.0 : q.min());
    w.Key("max");
    w.Double(q.empty() ? 0.0 : q.max());
    w.Key("rank_variance");
    w.Double(q.rank_variance());
    w.Key("levels");
    w.StartArray();
    for (const auto& level : q.levels()) {
      w.StartArray();
      for (double v : level) w.Double(v);
      w.EndArray();
    }
    w.EndArray();
    w.EndObject();
    w.Key("histogram");
    w.StartObject();
    w.Key("edges");
    w.StartArray();
    for (double e : s.histogram.edges()) w.Double(e);
    w.EndArray();
    w.Key("counts");
    w.StartArray();
    for (uint64_t c : s.histogram.counts()) w.Uint64(c);
    w.EndArray();
    w.EndObject();
  } else {
    w.Key("categories");
    w.StartObject();
    w.Key("cap");
    w.Uint(s.categories.cap());
    w.Key("values");
    w.StartObject();
    for (const auto& [v, n] : s.categories.values()) {
      WriteString(w, v);
      w.Uint64(n);
    }
    w.EndObject();
    w.Key("other");
    w.Uint64(s.categories.other());
    w.EndObject();
  }
  w.EndObject();
}

// Field readers: each error names the full path of the field.
using Value = rapidjson::Value;

Result<const Value*> Member(const Value& obj, const std::string& path, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return InvalidArgument(path + "." + key + ": missing");
  return &it->value;
}

Result<uint64_t> ReadUint(const Value& obj, const std::string& path, const char* key) {
  FERRY_ASSIGN_OR_RETURN(const Value* v, Member(obj, path, key));
  if (!v->IsUint64()) return InvalidArgument(path + "." + key + ": expected a non-negative integer");
  return v->GetUint64();
}

Result<double> ReadDouble(const Value& obj, const std::string& path, const char* key) {
  FERRY_ASSIGN_OR_RETURN(const Value* v, Member(obj, path, key));
  if (!v->IsNumber()) return InvalidArgument(path + "." + key + ": expected a number");
  return v->GetDouble();
}

Result<std::string> ReadString(const Value& obj, const std::string& path, const char* key) {
  FERRY_ASSIGN_OR_RETURN(const Value* v, Member(obj, path, key));
  if (!v->IsString()) return InvalidArgument(path + "." + key + ": expected a string");
  return std::string(v->GetString(), v->GetStringLength());
}

Result<std::vector<double>> ReadNumbers(const Value& v, const std::string& path) {
  if (!v.IsArray()) return InvalidArgument(path + ": expected an array of numbers");
  std::vector<double> out;
  out.reserve(v.Size());
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    if (!v[i].IsNumber()) return InvalidArgument(path + "[" + std::to_string(i) + "]: expected a number");
    out.push_back(v[i].GetDouble());
  }
  return out;
}

Status Prefixed(const std::string& path, const Status& s) {
  return s.ok() ? s : InvalidArgument(path + "." + s.message());
}

Result<ProfileFeature> ReadFeature(const Value& v, const std::string& path) {
  if (!v.IsObject()) return InvalidArgument(path + ": expected an object");
  ProfileFeature f;
  FERRY_ASSIGN_OR_RETURN(f.name, ReadString(v, path, "name"));
  if (f.name.empty()) return InvalidArgument(path + ".name: empty");
  FERRY_ASSIGN_OR_RETURN(std::string type, ReadString(v, path, "type"));
  if (type == "numeric") {
    f.sketch.kind = FeatureKind::kNumeric;
  } else if (type == "categorical") {
    f.sketch.kind = FeatureKind::kCategorical;
  } else {
    return InvalidArgument(path + ".type: '" + type + "' is neither 'numeric' nor 'categorical'");
  }
  FERRY_ASSIGN_OR_RETURN(f.tensor, ReadString(v, path, "tensor"));
  FERRY_ASSIGN_OR_RETURN(uint64_t index, ReadUint(v, path, "index"));
  if (index > UINT32_MAX) return InvalidArgument(path + ".index: too large");
  f.index = static_cast<uint32_t>(index);
  FERRY_ASSIGN_OR_RETURN(f.sketch.rows, ReadUint(v, path, "rows"));
  FERRY_ASSIGN_OR_RETURN(f.sketch.missing, ReadUint(v, path, "missing"));
  if (f.sketch.missing > f.sketch.rows) return InvalidArgument(path + ".missing: more than rows");
  if (f.sketch.kind == FeatureKind::kNumeric) {
    const std::string sp = path + ".sketch";
    FERRY_ASSIGN_OR_RETURN(const Value* s, Member(v, path, "sketch"));
    if (!s->IsObject()) return InvalidArgument(sp + ": expected an object");
    FERRY_ASSIGN_OR_RETURN(std::string kind, ReadString(*s, sp, "kind"));
    if (kind != "kll") return InvalidArgument(sp + ".kind: '" + kind + "' is not 'kll'");
    FERRY_ASSIGN_OR_RETURN(uint64_t k, ReadUint(*s, sp, "k"));
    if (k > 1u << 20) return InvalidArgument(sp + ".k: too large");
    FERRY_ASSIGN_OR_RETURN(uint64_t n, ReadUint(*s, sp, "n"));
    FERRY_ASSIGN_OR_RETURN(double mn, ReadDouble(*s, sp, "min"));
    FERRY_ASSIGN_OR_RETURN(double mx, ReadDouble(*s, sp, "max"));
    FERRY_ASSIGN_OR_RETURN(double var, ReadDouble(*s, sp, "rank_variance"));
    FERRY_ASSIGN_OR_RETURN(const Value* lv, Member(*s, sp, "levels"));
    if (!lv->IsArray()) return InvalidArgument(sp + ".levels: expected an array of arrays");
    std::vector<std::vector<double>> levels;
    for (rapidjson::SizeType h = 0; h < lv->Size(); ++h) {
      FERRY_ASSIGN_OR_RETURN(auto level, ReadNumbers((*lv)[h], sp + ".levels[" + std::to_string(h) + "]"));
      levels.push_back(std::move(level));
    }
    auto sketch = KllSketch::FromParts(static_cast<uint32_t>(k), n, mn, mx, var, std::move(levels));
    if (!sketch.ok()) return Prefixed(sp, sketch.status());
    f.sketch.quantiles = std::move(sketch).value();
    if (n != f.sketch.rows - f.sketch.missing) {
      return InvalidArgument(sp + ".n: " + std::to_string(n) + " is not rows - missing");
    }
    const std::string hp = path + ".histogram";
    FERRY_ASSIGN_OR_RETURN(const Value* h, Member(v, path, "histogram"));
    if (!h->IsObject()) return InvalidArgument(hp + ": expected an object");
    FERRY_ASSIGN_OR_RETURN(const Value* ev, Member(*h, hp, "edges"));
    FERRY_ASSIGN_OR_RETURN(auto edges, ReadNumbers(*ev, hp + ".edges"));
    auto hist = FixedHistogram::WithEdges(std::move(edges));
    if (!hist.ok()) return Prefixed(hp, hist.status());
    FERRY_ASSIGN_OR_RETURN(const Value* cv, Member(*h, hp, "counts"));
    FERRY_ASSIGN_OR_RETURN(auto counts_d, ReadNumbers(*cv, hp + ".counts"));
    std::vector<uint64_t> counts;
    for (size_t i = 0; i < counts_d.size(); ++i) {
      if (!(counts_d[i] >= 0) || counts_d[i] != std::floor(counts_d[i])) {
        return InvalidArgument(hp + ".counts[" + std::to_string(i) + "]: expected a non-negative integer");
      }
      counts.push_back(static_cast<uint64_t>(counts_d[i]));
    }
    FERRY_RETURN_IF_ERROR(Prefixed(hp, hist->SetCounts(std::move(counts))));
    f.sketch.histogram = std::move(hist).value();
  } else {
    const std::string cp = path + ".categories";
    FERRY_ASSIGN_OR_RETURN(const Value* c, Member(v, path, "categories"));
    if (!c->IsObject()) return InvalidArgument(cp + ": expected an object");
    FERRY_ASSIGN_OR_RETURN(uint64_t cap, ReadUint(*c, cp, "cap"));
    FERRY_ASSIGN_OR_RETURN(const Value* values, Member(*c, cp, "values"));
    if (!values->IsObject()) return InvalidArgument(cp + ".values: expected an object of counts");
    if (values->MemberCount() > cap) return InvalidArgument(cp + ".values: more values than cap");
    CategoryCounts counts(static_cast<uint32_t>(std::min<uint64_t>(cap, UINT32_MAX)));
    for (auto it = values->MemberBegin(); it != values->MemberEnd(); ++it) {
      const std::string key(it->name.GetString(), it->name.GetStringLength());
      if (!it->value.IsUint64()) return InvalidArgument(cp + ".values." + key + ": expected a non-negative integer");
      counts.Add(key, it->value.GetUint64());
    }
    FERRY_ASSIGN_OR_RETURN(uint64_t other, ReadUint(*c, cp, "other"));
    counts.AddOther(other);
    f.sketch.categories = std::move(counts);
  }
  return f;
}

Result<std::vector<ProfileFeature>> ReadFeatures(const Value& doc, const char* key, bool required) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd()) {
    if (required) return InvalidArgument(std::string(key) + ": missing");
    return std::vector<ProfileFeature>{};
  }
  if (!it->value.IsArray()) return InvalidArgument(std::string(key) + ": expected an array");
  std::vector<ProfileFeature> out;
  for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
    FERRY_ASSIGN_OR_RETURN(auto f, ReadFeature(it->value[i], std::string(key) + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

std::string ProfileToJson(const ReferenceProfile& profile) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("format");
  WriteString(w, ReferenceProfile::kFormatName);
  w.Key("version");
  w.Int(ReferenceProfile::kFormatVersion);
  w.Key("rows");
  w.Uint64(profile.rows);
  w.Key("source");
  WriteString(w, profile.source);
  w.Key("features");
  w.StartArray();
  for (const auto& f : profile.features) WriteFeature(w, f);
  w.EndArray();
  w.Key("predictions");
  w.StartArray();
  for (const auto& f : profile.predictions) WriteFeature(w, f);
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

Result<ReferenceProfile> ProfileFromJson(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    return InvalidArgument(std::string("not JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()) +
                           " at offset " + std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return InvalidArgument("expected a JSON object");
  auto format = doc.FindMember("format");
  if (format == doc.MemberEnd() || !format->value.IsString() ||
      format->value.GetString() != std::string(ReferenceProfile::kFormatName)) {
    return InvalidArgument("format: expected \"" + std::string(ReferenceProfile::kFormatName) + "\"");
  }
  auto version = doc.FindMember("version");
  if (version == doc.MemberEnd() || !version->value.IsInt()) return InvalidArgument("version: missing or not an integer");
  if (version->value.GetInt() != ReferenceProfile::kFormatVersion) {
    return InvalidArgument("version: " + std::to_string(version->value.GetInt()) + " is not supported (this ferry reads " +
                           std::to_string(ReferenceProfile::kFormatVersion) + ")");
  }
  ReferenceProfile p;
  auto rows = doc.FindMember("rows");
  if (rows == doc.MemberEnd() || !rows->value.IsUint64()) return InvalidArgument("rows: missing or not a count");
  p.rows = rows->value.GetUint64();
  auto source = doc.FindMember("source");
  if (source != doc.MemberEnd() && source->value.IsString()) p.source = source->value.GetString();
  FERRY_ASSIGN_OR_RETURN(p.features, ReadFeatures(doc, "features", true));
  FERRY_ASSIGN_OR_RETURN(p.predictions, ReadFeatures(doc, "predictions", false));
  return p;
}

Result<ReferenceProfile> ReadProfile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("profile " + path.string() + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  auto p = ProfileFromJson(ss.str());
  if (!p.ok()) return InvalidArgument("profile " + path.string() + ": " + p.status().message());
  return p;
}

Status WriteProfile(const std::filesystem::path& path, const ReferenceProfile& profile) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Unavailable("profile " + path.string() + ": cannot write " + tmp.string());
    out << ProfileToJson(profile);
    if (!out.flush()) return Unavailable("profile " + path.string() + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Unavailable("profile " + path.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace ferry::monitoring::drift
