#include "engine/rotating_log.h"

namespace ferry::engine {

RotatingLog::RotatingLog(std::string path, uint64_t max_bytes, int keep, size_t tail_lines)
    : tail_lines_(tail_lines), file_(std::move(path), max_bytes, keep) {}

void RotatingLog::Append(std::string_view bytes) {
  std::lock_guard lock(mu_);
  (void)file_.Append(bytes);  // failures are counted by the file
  for (char c : bytes) {
    if (c != '\n') {
      if (partial_.size() < 4096) partial_.push_back(c);
      continue;
    }
    tail_.push_back(std::move(partial_) + "\n");
    partial_.clear();
    if (tail_.size() > tail_lines_) tail_.pop_front();
  }
}

void RotatingLog::Note(std::string_view line) {
  std::string s = "[ferry engine] ";
  s += line;
  s += "\n";
  Append(s);
}

std::string RotatingLog::Tail() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& l : tail_) out += l;
  if (!partial_.empty()) out += partial_ + "\n";
  return out;
}

uint64_t RotatingLog::write_errors() const {
  std::lock_guard lock(mu_);
  return file_.write_errors();
}

}  // namespace ferry::engine
