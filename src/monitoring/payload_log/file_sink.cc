#include "monitoring/payload_log/file_sink.h"

namespace ferry::monitoring::payload_log {

FileSink::FileSink(std::string spec, std::string path, FileSinkOptions options, EventCounter counted)
    : spec_(std::move(spec)), file_(std::move(path), options.max_bytes, options.keep), counted_(std::move(counted)) {}

void FileSink::Write(std::vector<CloudEvent> events) {
  line_.clear();
  for (const auto& e : events) {
    AppendStructured(e, &line_);
    line_ += '\n';
  }
  const EventResult result = file_.Append(line_) ? EventResult::kWritten : EventResult::kFailed;
  if (counted_)
    for (const auto& e : events) counted_(e, result);
}

}  // namespace ferry::monitoring::payload_log
