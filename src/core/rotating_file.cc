#include "core/rotating_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace ferry {

RotatingFile::RotatingFile(std::string path, uint64_t max_bytes, int keep)
    : path_(std::move(path)), max_bytes_(max_bytes), keep_(keep) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  Open();
}

RotatingFile::~RotatingFile() {
  if (fd_ >= 0) ::close(fd_);
}

void RotatingFile::Open() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  struct stat st;
  size_ = fd_ >= 0 && ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  if (fd_ < 0) ++errors_;
}

void RotatingFile::Rotate() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  // FILE.(keep-1) -> FILE.keep, ..., FILE -> FILE.1; the oldest is overwritten.
  for (int i = keep_; i >= 1; --i) {
    std::string from = i == 1 ? path_ : path_ + "." + std::to_string(i - 1);
    std::string to = path_ + "." + std::to_string(i);
    std::rename(from.c_str(), to.c_str());
  }
  if (keep_ <= 0) ::unlink(path_.c_str());
  ++rotations_;
  Open();
}

bool RotatingFile::Append(std::string_view bytes) {
  if (fd_ < 0) Open();
  if (fd_ < 0) return false;
  if (size_ > 0 && size_ + bytes.size() > max_bytes_) Rotate();
  while (!bytes.empty() && fd_ >= 0) {
    ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n <= 0) {
      ++errors_;
      return false;
    }
    size_ += static_cast<uint64_t>(n);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return fd_ >= 0;
}

}  // namespace ferry
