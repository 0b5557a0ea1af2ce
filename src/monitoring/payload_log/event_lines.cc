#include "monitoring/payload_log/event_lines.h"

#include <charconv>
#include <cctype>
#include <cstdint>
#include <cstring>

#include "core/request_id.h"
#include "monitoring/payload_log/cloud_event.h"
#include "protocol/error_map.h"
#include "protocol/v2_json.h"

namespace ferry::monitoring::payload_log {
namespace {

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

void AppendUint(uint64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

// `v`'s last `width` decimal digits at `at` (zero-padded).
void PutDigits(unsigned v, int width, char* at) {
  for (int i = width - 1; i >= 0; --i) {
    at[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

// ,"key":"value" (the key needs no escaping: the callers' keys are literals).
void Field(std::string_view key, std::string_view value, std::string* out) {
  out->append(",\"").append(key).append("\":");
  AppendJsonString(value, out);
}

void PercentEncodedInto(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      *out += static_cast<char>(c);
    } else {
      *out += '%';
      *out += kHex[c >> 4];
      *out += kHex[c & 15];
    }
  }
}

// The tensors as a JSON array of V2 tensor objects; true when one was truncated.
bool AppendTensors(const std::vector<Tensor>& tensors, size_t max_bytes, protocol::TensorDataJsonEncoder* encoder,
                   std::string* out) {
  bool truncated = false;
  *out += '[';
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (i > 0) *out += ',';
    out->append("{\"name\":");
    AppendJsonString(t.name, out);
    Field("datatype", DataTypeName(t.datatype), out);
    out->append(",\"shape\":[");
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (d > 0) *out += ',';
      AppendInt(t.shape[d], out);
    }
    *out += ']';
    const protocol::TensorDataJsonEncoder::Encoded data = encoder->Encode(t, max_bytes);
    if (data.elements_written < data.elements_total) {
      truncated = true;
      out->append(",\"parameters\":{\"truncated\":true,\"element_count\":");
      AppendUint(data.elements_total, out);
      *out += '}';
    }
    out->append(",\"data\":").append(data.json);
    *out += '}';
  }
  *out += ']';
  return truncated;
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  auto plain = [](unsigned char c) { return c >= 0x20 && c != '"' && c != '\\'; };
  // The plain prefix, eight bytes a step (a payload event writes about ten strings, ids
  // of 36 bytes among them): a word with no byte < 0x20, '"' or '\\' is plain. Each
  // test is exact for the word as a whole.
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  auto has_zero = [](uint64_t w) { return ((w - kOnes) & ~w & kHigh) != 0; };
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (((w - kOnes * 0x20) & ~w & kHigh) != 0 || has_zero(w ^ (kOnes * '"')) || has_zero(w ^ (kOnes * '\\'))) break;
  }
  while (i < s.size() && plain(static_cast<unsigned char>(s[i]))) ++i;
  out->reserve(out->size() + s.size() + 2);
  *out += '"';
  if (i == s.size()) {  // the usual case: nothing to escape, one copy
    out->append(s);
    *out += '"';
    return;
  }
  size_t run = 0;  // start of the bytes not yet copied
  for (; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (plain(c)) continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default: {
        const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(u, sizeof u);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  *out += '"';
}

void AppendRfc3339Millis(uint64_t ms, std::string* out) {
  const uint64_t secs = ms / 1000;
  // Howard Hinnant's days-to-civil (proleptic Gregorian, exact for every day after 1970).
  const int64_t z = static_cast<int64_t>(secs / 86400) + 719468;
  const int64_t era = z / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned day = doy - (153 * mp + 2) / 5 + 1;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = static_cast<int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
  if (year > 9999) {  // past four digits: the C library's text
    out->append(Rfc3339Millis(ms));
    return;
  }
  const unsigned sod = static_cast<unsigned>(secs % 86400);
  // Written into a buffer and appended once: two timestamps per payload event, and a
  // string append per field cost ~600 instructions each.
  char b[] = "0000-00-00T00:00:00.000Z";
  PutDigits(static_cast<unsigned>(year), 4, b);
  PutDigits(month, 2, b + 5);
  PutDigits(day, 2, b + 8);
  PutDigits(sod / 3600, 2, b + 11);
  PutDigits(sod / 60 % 60, 2, b + 14);
  PutDigits(sod % 60, 2, b + 17);
  PutDigits(static_cast<unsigned>(ms % 1000), 3, b + 20);
  out->append(b, sizeof b - 1);
}

void EventLineWriter::Prepare(const InferenceRecord& r, const EventOptions& options) {
  if (prepared_ && r.model == model_ && r.version == version_ && options.source == source_) return;
  model_ = r.model;
  version_ = r.version;
  source_ = options.source;
  std::string uri = options.source + "/models/";
  PercentEncodedInto(r.model, &uri);
  uri.append("/versions/");
  PercentEncodedInto(r.version, &uri);
  for (auto [type, head] : {std::pair{kRequestEventType, &request_head_}, std::pair{kResponseEventType, &response_head_}}) {
    head->assign("\",\"source\":");
    AppendJsonString(uri, head);
    head->append(",\"type\":");
    AppendJsonString(type, head);
    head->append(",\"time\":\"");
  }
  names_.assign(",\"model\":");
  AppendJsonString(r.model, &names_);
  names_.append(",\"modelversion\":");
  AppendJsonString(r.version, &names_);
  names_.append(",\"protocol\":");
  response_names_.assign("\"model_name\":");
  AppendJsonString(r.model, &response_names_);
  response_names_.append(",\"model_version\":");
  AppendJsonString(r.version, &response_names_);
  prepared_ = true;
}

size_t EventLineWriter::Append(const InferenceRecord& r, const EventOptions& options, std::string* out) {
  Prepare(r, options);
  const std::string trace_parent = r.trace_parent ? r.trace_parent->Format() : std::string();
  // Up to the extensions, in AppendStructured's order; `with_data` adds datacontenttype.
  auto head = [&](const std::string& type_head, uint64_t time_ms, bool with_data) {
    out->append("{\"specversion\":\"1.0\",\"id\":\"");
    const size_t at = out->size();
    out->resize(at + kRequestIdLength);
    WriteNewRequestId(out->data() + at);
    out->append(type_head);
    AppendRfc3339Millis(time_ms, out);
    *out += '"';
    if (with_data) out->append(",\"datacontenttype\":\"application/json\"");
    out->append(",\"requestid\":");
    AppendJsonString(r.request_id, out);
    out->append(names_);
    out->append(r.frontend == Frontend::kGrpc ? "\"grpc\"" : "\"http\"");
    if (r.trace_parent) Field("traceparent", trace_parent, out);
    if (options.sampled_rate > 1) {
      out->append(",\"sampledrate\":");
      AppendInt(options.sampled_rate, out);
    }
  };
  size_t events = 0;
  if (options.mode != LogMode::kResponse) {
    // A body that did not decode left no tensors: the event then has no data.
    const bool with_data = !r.inputs.empty() || r.code == StatusCode::kOk;
    bool truncated = false;
    if (with_data) {
      data_.assign("{");
      if (!r.request_id.empty()) {
        data_.append("\"id\":");
        AppendJsonString(r.request_id, &data_);
        data_ += ',';
      }
      if (!r.parameters.empty()) data_.append("\"parameters\":").append(protocol::EncodeParametersJson(r.parameters)) += ',';
      data_.append("\"inputs\":");
      truncated = AppendTensors(r.inputs, options.max_tensor_bytes, &tensor_json_, &data_);
      data_ += '}';
    }
    head(request_head_, r.received_wall_ms, with_data);
    if (truncated) out->append(",\"truncated\":true");
    if (with_data) out->append(",\"data\":").append(data_);
    out->append("}\n");
    ++events;
  }
  if (options.mode != LogMode::kRequest) {
    bool truncated = false;
    data_.assign("{");
    if (r.code == StatusCode::kOk) {
      if (!r.request_id.empty()) {
        data_.append("\"id\":");
        AppendJsonString(r.request_id, &data_);
        data_ += ',';
      }
      data_.append(response_names_);
      data_.append(",\"outputs\":");
      truncated = AppendTensors(r.outputs, options.max_tensor_bytes, &tensor_json_, &data_);
    } else {
      data_.append("\"error\":");
      AppendJsonString(r.error, &data_);
    }
    data_ += '}';
    head(response_head_, r.received_wall_ms + r.duration_ns / 1000000, true);
    out->append(",\"statuscode\":");
    AppendInt(protocol::HttpStatusFor(r.code), out);
    out->append(",\"durationus\":");
    AppendInt(static_cast<int64_t>(r.duration_ns / 1000), out);
    if (truncated) out->append(",\"truncated\":true");
    out->append(",\"data\":").append(data_);
    out->append("}\n");
    ++events;
  }
  return events;
}

}  // namespace ferry::monitoring::payload_log
