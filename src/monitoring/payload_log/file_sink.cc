#include "monitoring/payload_log/file_sink.h"

#include <algorithm>

namespace ferry::monitoring::payload_log {

FileSink::FileSink(std::string spec, std::string path, FileSinkOptions options, EventCounter counted)
    : spec_(std::move(spec)),
      file_(std::move(path), options.max_bytes, options.keep),
      max_buffer_(static_cast<size_t>(std::min<uint64_t>(kMaxBuffer, options.max_bytes))),
      counted_(std::move(counted)) {}

void FileSink::Write(std::vector<CloudEvent> events) {
  const size_t before = buffer_.size();
  for (const auto& e : events) {
    AppendStructured(e, &buffer_);
    buffer_ += '\n';
  }
  KeepTogether(before);
  for (const auto& e : events) Pending(e.model, e.version, 1);
  if (buffer_.size() >= max_buffer_) EndBatch();
}

void FileSink::WriteRecord(const InferenceRecord& record, const EventOptions& options) {
  const size_t before = buffer_.size();
  const size_t n = lines_.Append(record, options, &buffer_);
  KeepTogether(before);
  Pending(record.model, record.version, n);
  if (buffer_.size() >= max_buffer_) EndBatch();
}

void FileSink::KeepTogether(size_t before) {
  // A request's lines stay together: when they would take the buffer past its bound (a
  // file could then not rotate before it passes max_bytes), what came before goes first.
  if (before > 0 && buffer_.size() > max_buffer_) {
    std::string lines = buffer_.substr(before);
    buffer_.resize(before);
    EndBatch();
    buffer_ = std::move(lines);
  }
}

void FileSink::Pending(std::string_view model, std::string_view version, size_t n) {
  if (!pending_.empty() && pending_.back().first.model == model && pending_.back().first.version == version) {
    pending_.back().second += n;
    return;
  }
  CloudEvent key;  // only what the counters read
  key.model = model;
  key.version = version;
  pending_.emplace_back(std::move(key), n);
}

void FileSink::EndBatch() {
  if (buffer_.empty()) return;
  const EventResult result = file_.Append(buffer_) ? EventResult::kWritten : EventResult::kFailed;
  buffer_.clear();
  if (counted_)
    for (const auto& [key, n] : pending_)
      for (size_t i = 0; i < n; ++i) counted_(key, result);
  pending_.clear();
}

}  // namespace ferry::monitoring::payload_log
