#pragma once

#include <cstdint>
#include <string>

#include "core/rotating_file.h"
#include "monitoring/payload_log/payload_sink.h"

namespace ferry::monitoring::payload_log {

struct FileSinkOptions {
  uint64_t max_bytes = 100u << 20;  // rotate before a file would pass this
  int keep = 5;                     // rotated files kept: FILE.1 ... FILE.keep
};

// Appends events to a JSON Lines file, one CloudEvent (structured JSON) a line, with
// size-based rotation (a RotatingFile: FILE, FILE.1, ..., oldest dropped). A request's
// events are written by one write(2), so a crash leaves whole lines; they reach the
// page cache at once (no buffering in the process, nothing to lose at exit).
// Thread-safety: as PayloadSink (hub thread only).
class FileSink final : public PayloadSink {
 public:
  FileSink(std::string spec, std::string path, FileSinkOptions options, EventCounter counted);
  void Write(std::vector<CloudEvent> events) override;
  void Flush() override {}
  const std::string& spec() const override { return spec_; }

 private:
  const std::string spec_;
  RotatingFile file_;
  EventCounter counted_;
  std::string line_;  // reused buffer
};

}  // namespace ferry::monitoring::payload_log
