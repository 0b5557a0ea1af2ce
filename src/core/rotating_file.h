#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

// A file appended to that rotates by size: FILE, FILE.1 ... FILE.keep (oldest dropped).
// An append never straddles two files, so a file of whole lines stays whole lines.
// Used for replicas' output (engine) and payload logs (monitoring).
// Thread-safety: none; the owner serialises calls.
class RotatingFile {
 public:
  // Creates the parent folder and opens (appends to) FILE. max_bytes: an append that
  // would take a non-empty file past it rotates first. keep: rotated files kept besides
  // FILE (0: FILE is truncated instead).
  RotatingFile(std::string path, uint64_t max_bytes, int keep);
  ~RotatingFile();
  RotatingFile(const RotatingFile&) = delete;
  RotatingFile& operator=(const RotatingFile&) = delete;

  // Appends `bytes`; false when the file could not be opened or written (counted in
  // write_errors; the next append tries to open it again, so a freed disk recovers).
  bool Append(std::string_view bytes);
  // Files rotated so far.
  uint64_t rotations() const { return rotations_; }
  uint64_t write_errors() const { return errors_; }
  const std::string& path() const { return path_; }

 private:
  void Open();
  void Rotate();

  const std::string path_;
  const uint64_t max_bytes_;
  const int keep_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t rotations_ = 0;
  uint64_t errors_ = 0;
};

}  // namespace ferry
