#include "stream/consumer_lag.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <charconv>

namespace ferry::stream {

Result<std::vector<PartitionLag>> ParseConsumerLag(std::string_view stats_json) {
  rapidjson::Document doc;
  doc.Parse(stats_json.data(), stats_json.size());
  if (doc.HasParseError() || !doc.IsObject()) return InvalidArgument("statistics: not a JSON object");
  std::vector<PartitionLag> out;
  auto topics = doc.FindMember("topics");
  if (topics == doc.MemberEnd()) return out;
  if (!topics->value.IsObject()) return InvalidArgument("statistics: 'topics' is not an object");
  for (const auto& t : topics->value.GetObject()) {
    if (!t.value.IsObject()) continue;
    auto parts = t.value.FindMember("partitions");
    if (parts == t.value.MemberEnd() || !parts->value.IsObject()) continue;
    for (const auto& p : parts->value.GetObject()) {
      const std::string_view id(p.name.GetString(), p.name.GetStringLength());
      int32_t partition = -1;
      auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), partition);
      if (ec != std::errc() || end != id.data() + id.size() || partition < 0) continue;
      if (!p.value.IsObject()) continue;
      int64_t lag = -1;
      for (const char* field : {"consumer_lag", "consumer_lag_stored"}) {
        auto f = p.value.FindMember(field);
        if (f == p.value.MemberEnd() || !f->value.IsInt64() || f->value.GetInt64() < 0) continue;
        if (lag < 0 || f->value.GetInt64() < lag) lag = f->value.GetInt64();
      }
      if (lag < 0) continue;
      out.push_back({std::string(t.name.GetString(), t.name.GetStringLength()), partition, lag});
    }
  }
  std::sort(out.begin(), out.end(), [](const PartitionLag& a, const PartitionLag& b) {
    return a.topic != b.topic ? a.topic < b.topic : a.partition < b.partition;
  });
  return out;
}

}  // namespace ferry::stream
