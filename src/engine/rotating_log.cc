#include "engine/rotating_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace ferry::engine {

RotatingLog::RotatingLog(std::string path, uint64_t max_bytes, int keep, size_t tail_lines)
    : path_(std::move(path)), max_bytes_(max_bytes), keep_(keep), tail_lines_(tail_lines) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  OpenLocked();
}

RotatingLog::~RotatingLog() {
  if (fd_ >= 0) ::close(fd_);
}

void RotatingLog::OpenLocked() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  struct stat st;
  size_ = fd_ >= 0 && ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  if (fd_ < 0) ++errors_;
}

void RotatingLog::RotateLocked() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  // FILE.(keep-1) -> FILE.keep, ..., FILE -> FILE.1; the oldest is overwritten.
  for (int i = keep_; i >= 1; --i) {
    std::string from = i == 1 ? path_ : path_ + "." + std::to_string(i - 1);
    std::string to = path_ + "." + std::to_string(i);
    std::rename(from.c_str(), to.c_str());
  }
  if (keep_ <= 0) ::unlink(path_.c_str());
  OpenLocked();
}

void RotatingLog::WriteLocked(std::string_view bytes) {
  if (fd_ < 0) OpenLocked();
  if (fd_ < 0) return;
  if (size_ > 0 && size_ + bytes.size() > max_bytes_) RotateLocked();
  while (!bytes.empty() && fd_ >= 0) {
    ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n <= 0) {
      ++errors_;
      return;
    }
    size_ += static_cast<uint64_t>(n);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void RotatingLog::Append(std::string_view bytes) {
  std::lock_guard lock(mu_);
  WriteLocked(bytes);
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
  return errors_;
}

}  // namespace ferry::engine
