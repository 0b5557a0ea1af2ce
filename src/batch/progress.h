#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ferry::batch {

// Reports a job's progress: on a terminal, one line redrawn in place (rows, percent of
// the input, rows/s, ETA, errors) at most every 200 ms; otherwise a log line every
// `log_every`. Percent and ETA come from the input bytes consumed, so they are known
// for every format.
// Thread-safety: one thread (the job's).
class Progress {
 public:
  // `to_terminal`: draw the in-place line (stderr is a TTY). `start_offset` and
  // `end_offset`: the input bytes this run covers; `rows_before`: rows a resumed
  // job had already done.
  Progress(bool to_terminal, std::chrono::milliseconds log_every, uint64_t start_offset, uint64_t end_offset,
           uint64_t rows_before);

  void Update(uint64_t rows_done, uint64_t rows_failed, uint64_t offset);
  // Ends the terminal line.
  void Finish();
  // Rows per second over this run so far.
  double rate(uint64_t rows_done) const;
  double elapsed_seconds() const;

 private:
  std::string Line(uint64_t rows_done, uint64_t rows_failed, uint64_t offset) const;

  const bool terminal_;
  const std::chrono::milliseconds every_;
  const uint64_t start_offset_, end_offset_, rows_before_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  bool drawn_ = false;
};

}  // namespace ferry::batch
