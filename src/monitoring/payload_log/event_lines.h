#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "monitoring/inference_tap.h"
#include "monitoring/payload_log/payload_events.h"
#include "protocol/v2_json.h"

namespace ferry::monitoring::payload_log {

// Writes the CloudEvents of one answered request straight as JSON lines (structured
// mode, one event a line, each ending in '\n'): the same text as AppendStructured over
// each event of RecordEvents(record, options), ids aside (each event gets its own new
// UUID here as there), without building the intermediate CloudEvent values, their
// extension vectors and strings. The file sink writes every event this way; sinks that
// need the event's attributes one by one (Kafka headers, HTTP retries) keep RecordEvents.
// Thread-safety: an EventLineWriter is used by one thread at a time (its scratch buffer
// is reused between records so that a record allocates nothing once it is warm).
class EventLineWriter {
 public:
  // Appends the record's lines to `out`; returns how many events they are (1 or 2).
  size_t Append(const InferenceRecord& record, const EventOptions& options, std::string* out);

 private:
  // The parts of the lines that are the same for every record of a version, encoded
  // once for the version of the last record (the hub hands records over in runs of one
  // version).
  void Prepare(const InferenceRecord& record, const EventOptions& options);

  std::string data_;  // the request or response event's data (JSON), before its line
  protocol::TensorDataJsonEncoder tensor_json_;  // the tensors' data arrays
  bool prepared_ = false;
  std::string model_, version_, source_;  // what the parts below were encoded for
  std::string request_head_, response_head_;  // ","source":...,"type":...,"time":"
  std::string names_;           // ,"model":...,"modelversion":...,"protocol":
  std::string response_names_;  // "model_name":...,"model_version":...
};

// Appends `s` as a JSON string (quoted), escaped as rapidjson's Writer escapes it:
// '"', '\\' and control characters (\b \f \n \r \t, else \u00XX); other bytes as they are.
void AppendJsonString(std::string_view s, std::string* out);
// Appends RFC 3339 in UTC with milliseconds (Rfc3339Millis's text) without formatting
// through the C library: 2026-12-01T17:03:04.123Z.
void AppendRfc3339Millis(uint64_t ms_since_epoch, std::string* out);

}  // namespace ferry::monitoring::payload_log
