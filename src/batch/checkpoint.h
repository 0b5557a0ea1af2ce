#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ferry::batch {

// What makes two runs the same job: the input file (path, size, modification time),
// the model version and every option that changes the output bytes. A checkpoint
// written by one job is refused by another, naming the field that differs.
using JobIdentity = std::vector<std::pair<std::string, std::string>>;

// How far a job got, durably: every byte before output_bytes / error_bytes of the
// partial files belongs to rows before next_row, and the input resumes at
// input_offset. A checkpoint is only written after the partial files have been
// flushed and synced up to those offsets, so after a crash (kill -9, power loss) the
// partial files are at least that long and truncating them there drops exactly the
// rows that must be redone.
struct Checkpoint {
  JobIdentity identity;
  uint64_t input_offset = 0;
  uint64_t next_row = 0;   // input rows (all shards) consumed
  uint64_t next_line = 1;  // line of the next row (CSV, JSONL)
  uint64_t output_bytes = 0;
  uint64_t error_bytes = 0;
  uint64_t row_group_meta_bytes = 0;  // Parquet output: bytes of the row groups' metadata file
  uint64_t rows_ok = 0;      // rows written to the output
  uint64_t rows_failed = 0;  // rows written to the error file
  bool complete = false;     // the partial files are final; only the renames remain
};

// Writes `c` to `path` atomically (a temporary file, fsync, rename, fsync of the
// folder). Errors name the path.
Status SaveCheckpoint(const std::filesystem::path& path, const Checkpoint& c);

// Reads the checkpoint at `path`; nullopt when there is none. INVALID_ARGUMENT naming
// the path when it exists but does not parse.
Result<std::optional<Checkpoint>> LoadCheckpoint(const std::filesystem::path& path);

// Empty when `a` (the checkpoint's) and `b` (this run's) are the same job, else a
// sentence naming the first field that differs and both values.
std::string IdentityDifference(const JobIdentity& a, const JobIdentity& b);

// Writes all of `data` to `fd` at its current position. Errors name `what`.
Status WriteAll(int fd, std::string_view data, const std::string& what);

}  // namespace ferry::batch
