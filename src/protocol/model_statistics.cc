#include "protocol/model_statistics.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>
#include <tuple>

namespace ferry::protocol {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteDuration(Writer& w, const char* key, const Duration& d) {
  w.Key(key);
  w.StartObject();
  w.Key("count");
  w.Uint64(d.count);
  w.Key("ns");
  w.Uint64(d.ns);
  w.EndObject();
}

Status Bad(const std::string& field, std::string_view why) {
  return InvalidArgument("statistics: " + field + ": " + std::string(why));
}

Result<uint64_t> ReadCount(const rapidjson::Value& obj, const char* key, const std::string& where) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return uint64_t{0};  // absent: nothing counted
  if (!it->value.IsUint64()) return Bad(where + "." + key, "not an unsigned integer");
  return it->value.GetUint64();
}

Status ReadDuration(const rapidjson::Value& parent, const char* key, const std::string& where, Duration* out) {
  auto it = parent.FindMember(key);
  if (it == parent.MemberEnd()) return Status::Ok();
  const std::string at = where + "." + key;
  if (!it->value.IsObject()) return Bad(at, "not an object");
  FERRY_ASSIGN_OR_RETURN(out->count, ReadCount(it->value, "count", at));
  FERRY_ASSIGN_OR_RETURN(out->ns, ReadCount(it->value, "ns", at));
  return Status::Ok();
}

void Add(Duration& into, const Duration& d) {
  into.count += d.count;
  into.ns += d.ns;
}

}  // namespace

std::string EncodeStatisticsJson(const std::vector<StatisticsSnapshot>& stats) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("model_stats");
  w.StartArray();
  for (const auto& s : stats) {
    w.StartObject();
    w.Key("name");
    w.String(s.name.c_str(), static_cast<rapidjson::SizeType>(s.name.size()));
    w.Key("version");
    w.String(s.version.c_str(), static_cast<rapidjson::SizeType>(s.version.size()));
    w.Key("last_inference");
    w.Uint64(s.last_inference_ms);
    w.Key("inference_count");
    w.Uint64(s.inference_count);
    w.Key("execution_count");
    w.Uint64(s.execution_count);
    w.Key("inference_stats");
    w.StartObject();
    WriteDuration(w, "success", s.success);
    WriteDuration(w, "fail", s.fail);
    WriteDuration(w, "queue", s.queue);
    WriteDuration(w, "compute_input", s.compute_input);
    WriteDuration(w, "compute_infer", s.compute_infer);
    WriteDuration(w, "compute_output", s.compute_output);
    WriteDuration(w, "cache_hit", s.cache_hit);
    WriteDuration(w, "cache_miss", s.cache_miss);
    w.EndObject();
    w.Key("response_stats");
    w.StartObject();
    w.EndObject();
    w.Key("batch_stats");
    w.StartArray();
    for (const auto& b : s.batches) {
      w.StartObject();
      w.Key("batch_size");
      w.Uint64(b.batch_size);
      WriteDuration(w, "compute_input", b.compute_input);
      WriteDuration(w, "compute_infer", b.compute_infer);
      WriteDuration(w, "compute_output", b.compute_output);
      w.EndObject();
    }
    w.EndArray();
    w.Key("memory_usage");
    w.StartArray();
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

Result<std::vector<StatisticsSnapshot>> DecodeStatisticsJson(std::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError()) return Bad("body", "not JSON");
  if (!doc.IsObject()) return Bad("body", "not a JSON object");
  auto list = doc.FindMember("model_stats");
  if (list == doc.MemberEnd() || !list->value.IsArray()) return Bad("model_stats", "missing or not an array");
  std::vector<StatisticsSnapshot> out;
  for (rapidjson::SizeType i = 0; i < list->value.Size(); ++i) {
    const rapidjson::Value& m = list->value[i];
    const std::string at = "model_stats[" + std::to_string(i) + "]";
    if (!m.IsObject()) return Bad(at, "not an object");
    StatisticsSnapshot s;
    for (auto [key, field] : {std::pair{"name", &s.name}, std::pair{"version", &s.version}}) {
      auto it = m.FindMember(key);
      if (it == m.MemberEnd() || !it->value.IsString()) return Bad(at + "." + key, "missing or not a string");
      field->assign(it->value.GetString(), it->value.GetStringLength());
    }
    FERRY_ASSIGN_OR_RETURN(s.last_inference_ms, ReadCount(m, "last_inference", at));
    FERRY_ASSIGN_OR_RETURN(s.inference_count, ReadCount(m, "inference_count", at));
    FERRY_ASSIGN_OR_RETURN(s.execution_count, ReadCount(m, "execution_count", at));
    auto inf = m.FindMember("inference_stats");
    if (inf != m.MemberEnd()) {
      const std::string is = at + ".inference_stats";
      if (!inf->value.IsObject()) return Bad(is, "not an object");
      for (auto [key, d] : {std::pair{"success", &s.success}, std::pair{"fail", &s.fail},
                            std::pair{"queue", &s.queue}, std::pair{"compute_input", &s.compute_input},
                            std::pair{"compute_infer", &s.compute_infer},
                            std::pair{"compute_output", &s.compute_output}, std::pair{"cache_hit", &s.cache_hit},
                            std::pair{"cache_miss", &s.cache_miss}})
        FERRY_RETURN_IF_ERROR(ReadDuration(inf->value, key, is, d));
    }
    auto batches = m.FindMember("batch_stats");
    if (batches != m.MemberEnd()) {
      if (!batches->value.IsArray()) return Bad(at + ".batch_stats", "not an array");
      for (rapidjson::SizeType j = 0; j < batches->value.Size(); ++j) {
        const rapidjson::Value& b = batches->value[j];
        const std::string bs = at + ".batch_stats[" + std::to_string(j) + "]";
        if (!b.IsObject()) return Bad(bs, "not an object");
        BatchStatistics stat;
        FERRY_ASSIGN_OR_RETURN(stat.batch_size, ReadCount(b, "batch_size", bs));
        FERRY_RETURN_IF_ERROR(ReadDuration(b, "compute_input", bs, &stat.compute_input));
        FERRY_RETURN_IF_ERROR(ReadDuration(b, "compute_infer", bs, &stat.compute_infer));
        FERRY_RETURN_IF_ERROR(ReadDuration(b, "compute_output", bs, &stat.compute_output));
        s.batches.push_back(stat);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<StatisticsSnapshot> MergeStatistics(const std::vector<std::vector<StatisticsSnapshot>>& parts) {
  std::map<std::pair<std::string, std::string>, StatisticsSnapshot> merged;
  std::map<std::tuple<std::string, std::string, uint64_t>, BatchStatistics> batches;
  for (const auto& part : parts) {
    for (const auto& s : part) {
      auto [it, fresh] = merged.try_emplace({s.name, s.version});
      StatisticsSnapshot& m = it->second;
      if (fresh) {
        m.name = s.name;
        m.version = s.version;
      }
      m.last_inference_ms = std::max(m.last_inference_ms, s.last_inference_ms);
      m.inference_count += s.inference_count;
      m.execution_count += s.execution_count;
      for (auto [into, from] : {std::pair{&m.success, &s.success}, std::pair{&m.fail, &s.fail},
                                std::pair{&m.queue, &s.queue}, std::pair{&m.compute_input, &s.compute_input},
                                std::pair{&m.compute_infer, &s.compute_infer},
                                std::pair{&m.compute_output, &s.compute_output},
                                std::pair{&m.cache_hit, &s.cache_hit}, std::pair{&m.cache_miss, &s.cache_miss}})
        Add(*into, *from);
      for (const auto& b : s.batches) {
        BatchStatistics& into = batches[{s.name, s.version, b.batch_size}];
        into.batch_size = b.batch_size;
        Add(into.compute_input, b.compute_input);
        Add(into.compute_infer, b.compute_infer);
        Add(into.compute_output, b.compute_output);
      }
    }
  }
  std::vector<StatisticsSnapshot> out;
  for (auto& [key, s] : merged) {
    for (auto it = batches.lower_bound({key.first, key.second, 0});
         it != batches.end() && std::get<0>(it->first) == key.first && std::get<1>(it->first) == key.second; ++it)
      s.batches.push_back(it->second);  // ascending batch size: the map's order
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ferry::protocol
