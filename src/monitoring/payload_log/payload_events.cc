#include "monitoring/payload_log/payload_events.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>

#include "core/request_id.h"
#include "protocol/error_map.h"
#include "protocol/v2_json.h"

namespace ferry::monitoring::payload_log {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, const char* key, std::string_view v) {
  w.Key(key);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

void Raw(Writer& w, const char* key, const std::string& json, rapidjson::Type type) {
  w.Key(key);
  w.RawValue(json.data(), json.size(), type);
}

// Writes the tensors as V2 JSON tensor objects; true when one was truncated.
bool WriteTensors(Writer& w, const char* key, const std::vector<Tensor>& tensors, size_t max_bytes) {
  bool truncated = false;
  w.Key(key);
  w.StartArray();
  for (const auto& t : tensors) {
    w.StartObject();
    Str(w, "name", t.name);
    Str(w, "datatype", DataTypeName(t.datatype));
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape) w.Int64(d);
    w.EndArray();
    protocol::TensorDataJson data = protocol::EncodeTensorDataJson(t, max_bytes);
    if (data.elements_written < data.elements_total) {
      truncated = true;
      w.Key("parameters");
      w.StartObject();
      w.Key("truncated");
      w.Bool(true);
      w.Key("element_count");
      w.Uint64(data.elements_total);
      w.EndObject();
    }
    Raw(w, "data", data.json, rapidjson::kArrayType);
    w.EndObject();
  }
  w.EndArray();
  return truncated;
}

std::string PercentEncoded(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

std::vector<CloudEvent> RecordEvents(const InferenceRecord& r, const EventOptions& options) {
  CloudEvent base;
  base.source = options.source + "/models/" + PercentEncoded(r.model) + "/versions/" + PercentEncoded(r.version);
  base.model = r.model;
  base.version = r.version;
  base.extensions = {{"requestid", r.request_id},
                     {"model", r.model},
                     {"modelversion", r.version},
                     {"protocol", std::string(FrontendName(r.frontend))}};
  if (r.trace_parent) base.extensions.emplace_back("traceparent", r.trace_parent->Format());
  if (options.sampled_rate > 1) base.extensions.emplace_back("sampledrate", options.sampled_rate);

  std::vector<CloudEvent> events;
  if (options.mode != LogMode::kResponse) {
    CloudEvent e = base;
    e.id = NewRequestId();
    e.type = kRequestEventType;
    e.time_ms = r.received_wall_ms;
    // A body that did not decode left no tensors: the event then has no data.
    if (!r.inputs.empty() || r.code == StatusCode::kOk) {
      rapidjson::StringBuffer sb;
      Writer w(sb);
      w.StartObject();
      if (!r.request_id.empty()) Str(w, "id", r.request_id);
      if (!r.parameters.empty()) Raw(w, "parameters", protocol::EncodeParametersJson(r.parameters), rapidjson::kObjectType);
      bool truncated = WriteTensors(w, "inputs", r.inputs, options.max_tensor_bytes);
      w.EndObject();
      e.data.assign(sb.GetString(), sb.GetSize());
      if (truncated) e.extensions.emplace_back("truncated", true);
    }
    events.push_back(std::move(e));
  }
  if (options.mode != LogMode::kRequest) {
    CloudEvent e = std::move(base);
    e.id = NewRequestId();
    e.type = kResponseEventType;
    e.time_ms = r.received_wall_ms + r.duration_ns / 1000000;
    e.extensions.emplace_back("statuscode", static_cast<int64_t>(protocol::HttpStatusFor(r.code)));
    e.extensions.emplace_back("durationus", static_cast<int64_t>(r.duration_ns / 1000));
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    if (r.code == StatusCode::kOk) {
      if (!r.request_id.empty()) Str(w, "id", r.request_id);
      Str(w, "model_name", r.model);
      Str(w, "model_version", r.version);
      if (WriteTensors(w, "outputs", r.outputs, options.max_tensor_bytes)) e.extensions.emplace_back("truncated", true);
    } else {
      Str(w, "error", r.error);
    }
    w.EndObject();
    e.data.assign(sb.GetString(), sb.GetSize());
    events.push_back(std::move(e));
  }
  return events;
}

}  // namespace ferry::monitoring::payload_log
