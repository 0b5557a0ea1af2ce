#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ferry::monitoring::payload_log {

// One CloudEvents 1.0 event as the payload log builds it, independent of how a sink
// puts it on the wire: structured JSON (a file line, an HTTP batch) or a binding's
// binary mode (a Kafka record: `ce_` headers for the attributes, the data as the value).
// A value; thread-safety as any value.
struct CloudEvent {
  // Extension attribute values: CloudEvents' String, Integer and Boolean types.
  using Value = std::variant<std::string, int64_t, bool>;

  std::string id;      // unique per event (a new UUID each)
  std::string source;  // URI-reference of the producer
  std::string type;    // e.g. org.ferry.inference.request
  uint64_t time_ms = 0;  // the occurrence, ms since the Unix epoch (written as RFC 3339, UTC)
  std::string datacontenttype = "application/json";
  // Extension attributes: names lower-case a-z and 0-9 only, at most 20 characters.
  std::vector<std::pair<std::string, Value>> extensions;
  // The data as JSON text (datacontenttype application/json); empty: the event has none.
  std::string data;

  // What the event is about, for sinks' counters and partition keys (also in extensions).
  std::string model, version;
};

// RFC 3339 in UTC with milliseconds: 2026-12-01T17:03:04.123Z.
std::string Rfc3339Millis(uint64_t ms_since_epoch);

// Whether `name` is a valid extension attribute name (a-z, 0-9, 1 to 20 characters).
bool ValidExtensionName(std::string_view name);

// The event in CloudEvents' JSON format (structured mode), one line, no newline:
// {"specversion":"1.0","id":...,"source":...,"type":...,"time":...,"datacontenttype":...,
//  <extensions>..., "data":<data>}.
std::string EncodeStructured(const CloudEvent& event);
// Appends that encoding to `out`.
void AppendStructured(const CloudEvent& event, std::string* out);

// Media types of the JSON event format (structured mode) and of its batch (a JSON
// array of structured events), as CloudEvents' HTTP binding names them.
inline constexpr std::string_view kStructuredContentType = "application/cloudevents+json";
inline constexpr std::string_view kBatchContentType = "application/cloudevents-batch+json";

}  // namespace ferry::monitoring::payload_log
