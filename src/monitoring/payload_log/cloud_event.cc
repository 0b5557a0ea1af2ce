#include "monitoring/payload_log/cloud_event.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <ctime>

namespace ferry::monitoring::payload_log {

std::string Rfc3339Millis(uint64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];  // room for any int the compiler can imagine in each field
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

bool ValidExtensionName(std::string_view name) {
  if (name.empty() || name.size() > 20) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

void AppendStructured(const CloudEvent& e, std::string* out) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&w](const char* key, std::string_view v) {
    w.Key(key);
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  str("specversion", "1.0");
  str("id", e.id);
  str("source", e.source);
  str("type", e.type);
  str("time", Rfc3339Millis(e.time_ms));
  if (!e.data.empty()) str("datacontenttype", e.datacontenttype);
  for (const auto& [name, value] : e.extensions) {
    w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    if (const auto* s = std::get_if<std::string>(&value)) w.String(s->data(), static_cast<rapidjson::SizeType>(s->size()));
    else if (const auto* i = std::get_if<int64_t>(&value)) w.Int64(*i);
    else w.Bool(std::get<bool>(value));
  }
  if (!e.data.empty()) {
    w.Key("data");
    // The data is JSON already (the V2 body, encoded once); copied in as it is.
    w.RawValue(e.data.data(), e.data.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  out->append(sb.GetString(), sb.GetSize());
}

std::string EncodeStructured(const CloudEvent& event) {
  std::string out;
  AppendStructured(event, &out);
  return out;
}

}  // namespace ferry::monitoring::payload_log
