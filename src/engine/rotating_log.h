#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>

#include "core/rotating_file.h"

namespace ferry::engine {

// A replica's output: appended to a file that rotates by size (a RotatingFile: FILE,
// FILE.1 ... FILE.N, oldest dropped), with the last lines kept in memory for crash reports.
// Thread-safety: all methods are thread-safe.
class RotatingLog {
 public:
  // max_bytes: rotate once the file reaches it; keep: rotated files kept besides FILE.
  RotatingLog(std::string path, uint64_t max_bytes, int keep, size_t tail_lines = 20);
  RotatingLog(const RotatingLog&) = delete;
  RotatingLog& operator=(const RotatingLog&) = delete;

  // Appends raw output (any split of lines). Write errors are counted, not fatal: a full
  // disk must not stop a replica.
  void Append(std::string_view bytes);
  // Writes a line of the engine's own (a marker between process runs).
  void Note(std::string_view line);
  // The last lines seen, oldest first, each ending in '\n' (a partial last line too).
  std::string Tail() const;
  const std::string& path() const { return file_.path(); }
  uint64_t write_errors() const;

 private:
  const size_t tail_lines_;
  mutable std::mutex mu_;
  RotatingFile file_;             // guarded by mu_
  std::deque<std::string> tail_;  // complete lines; guarded by mu_
  std::string partial_;           // the line being written; guarded by mu_
};

}  // namespace ferry::engine
