#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace ferry::engine {

// A piece of a replica's log file (RotatingLog: FILE, FILE.1, ...), for the admin API.
struct LogChunk {
  std::string text;     // bytes of the log; invalid UTF-8 replaced by U+FFFD
  uint64_t offset = 0;  // where the next read (ReadLogFrom) starts: FILE's size after this read
  bool rotated = false; // FILE rotated since `from`: the rest of FILE.1 came first
  bool truncated = false;  // more than max_bytes were waiting; the oldest were left out
};

// The last `lines` lines of FILE (with FILE.1 in front when FILE alone has fewer).
// NotFound when FILE does not exist.
Result<LogChunk> ReadLogTail(const std::string& path, int lines, uint64_t max_bytes = 1 << 20);

// What FILE gained since byte `from` (a previous chunk's offset): at most max_bytes, the
// newest. If FILE is now shorter than `from` it rotated: the rest of FILE.1 from `from`,
// then FILE from its start.
Result<LogChunk> ReadLogFrom(const std::string& path, uint64_t from, uint64_t max_bytes = 1 << 20);

// Replaces every byte sequence that is not UTF-8 by U+FFFD, so the text fits in JSON.
std::string SanitizeUtf8(std::string_view in);

}  // namespace ferry::engine
