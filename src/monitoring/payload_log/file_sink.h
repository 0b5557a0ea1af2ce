#pragma once

#include <cstdint>
#include <string>

#include "core/rotating_file.h"
#include "monitoring/payload_log/event_lines.h"
#include "monitoring/payload_log/payload_sink.h"

namespace ferry::monitoring::payload_log {

struct FileSinkOptions {
  uint64_t max_bytes = 100u << 20;  // rotate before a file would pass this
  int keep = 5;                     // rotated files kept: FILE.1 ... FILE.keep
};

// Appends events to a JSON Lines file, one CloudEvent (structured JSON) a line, with
// size-based rotation (a RotatingFile: FILE, FILE.1, ..., oldest dropped). The events of
// one hub batch (its Writes up to EndBatch, or kMaxBuffer bytes of them) go out in one
// write(2) of whole lines, so a crash leaves whole lines, and they reach the page cache
// at the end of the batch, at most the hub's max_delay (10 ms) after the request was
// answered; Flush writes what is left at exit. A write per event costed a system call
// per request on the serving core.
// Thread-safety: as PayloadSink (hub thread only).
class FileSink final : public PayloadSink {
 public:
  FileSink(std::string spec, std::string path, FileSinkOptions options, EventCounter counted);
  // Lines past which Write writes out at once, without waiting for EndBatch.
  static constexpr size_t kMaxBuffer = 1u << 20;

  void Write(std::vector<CloudEvent> events) override;
  // The record's lines straight into the buffer (EventLineWriter), the same text as Write's.
  void WriteRecord(const InferenceRecord& record, const EventOptions& options) override;
  void EndBatch() override;
  void Flush() override { EndBatch(); }
  const std::string& spec() const override { return spec_; }

 private:
  // After one request's lines were appended from `before` on: when they took the buffer
  // past its bound, writes out what came before them (a request's lines stay together).
  void KeepTogether(size_t before);
  // `n` more events of the version in buffer_.
  void Pending(std::string_view model, std::string_view version, size_t n);

  const std::string spec_;
  RotatingFile file_;
  const size_t max_buffer_;  // kMaxBuffer, or less for a smaller max_bytes (whole files)
  EventCounter counted_;
  std::string buffer_;   // whole lines not yet written
  // The events in buffer_ per (model, version), for the counters once written.
  std::vector<std::pair<CloudEvent, size_t>> pending_;
  EventLineWriter lines_;
};

}  // namespace ferry::monitoring::payload_log
