#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "monitoring/payload_log/cloud_event.h"
#include "monitoring/payload_log/payload_events.h"

namespace ferry::monitoring::payload_log {

// What became of an event: in the file / accepted by the receiver; dropped because
// the sink's buffer was full; failed (a write error, or the receiver refused it or
// stayed unreachable through the retries).
enum class EventResult { kWritten, kDropped, kFailed };
std::string_view EventResultName(EventResult r);

// Called for every event a sink is done with, on the sink's thread (the hub's, or the
// sink's own sender thread). Must be thread-safe and quick.
using EventCounter = std::function<void(const CloudEvent& event, EventResult result)>;

// Where payload events go. A sink may be shared by several model versions (one file,
// one receiver). The JSONL file and HTTP sinks exist today; a Kafka sink (CloudEvents
// Kafka binding: the attributes as `ce_<name>` headers, the data as the record value,
// the request id as the key) implements the same interface.
// Thread-safety: Write and Flush are called on the monitoring hub's thread only; a sink
// with its own threads synchronises with them.
class PayloadSink {
 public:
  virtual ~PayloadSink() = default;
  // Takes the events of one answered request (its request and response events, kept
  // together in order). Never blocks for long: a sink that cannot keep up drops events
  // and counts them.
  virtual void Write(std::vector<CloudEvent> events) = 0;
  // Takes the events of one answered request as RecordEvents(record, options) builds
  // them. The default builds them and Writes them; a sink that puts them out as text
  // (the file sink) writes them straight from the record instead.
  virtual void WriteRecord(const InferenceRecord& record, const EventOptions& options) {
    Write(RecordEvents(record, options));
  }
  // The end of a run of Writes (one hub batch of a version): a sink that gathers its
  // Writes into one output (the file sink's one write(2)) puts them out now. Quick.
  virtual void EndBatch() {}
  // Writes out or sends what it holds, within the sink's own time bound; called at
  // shutdown after the last Write.
  virtual void Flush() = 0;
  // The sink as configured ("file:/var/log/ferry/payloads.jsonl", "http://...").
  virtual const std::string& spec() const = 0;
};

}  // namespace ferry::monitoring::payload_log
