#include "batch/progress.h"

#include <cstdio>

#include "core/log.h"

namespace ferry::batch {

Progress::Progress(bool to_terminal, std::chrono::milliseconds log_every, uint64_t start_offset, uint64_t end_offset,
                   uint64_t rows_before)
    : terminal_(to_terminal),
      every_(to_terminal ? std::chrono::milliseconds(200) : log_every),
      start_offset_(start_offset),
      end_offset_(end_offset),
      rows_before_(rows_before),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate(uint64_t rows_done) const {
  const double s = elapsed_seconds();
  return s > 0 ? static_cast<double>(rows_done - rows_before_) / s : 0.0;
}

std::string Progress::Line(uint64_t rows_done, uint64_t rows_failed, uint64_t offset) const {
  const double span = static_cast<double>(end_offset_ - start_offset_);
  const double frac = span > 0 ? static_cast<double>(offset - start_offset_) / span : 1.0;
  const double s = elapsed_seconds();
  char buf[256];
  int n = std::snprintf(buf, sizeof(buf), "%llu rows (%.0f%%), %.0f rows/s", static_cast<unsigned long long>(rows_done),
                        100.0 * static_cast<double>(offset) / static_cast<double>(end_offset_ ? end_offset_ : 1),
                        rate(rows_done));
  if (frac > 0.001 && frac < 1.0) {
    const int eta = static_cast<int>(s * (1.0 - frac) / frac + 0.5);
    n += std::snprintf(buf + n, sizeof(buf) - static_cast<size_t>(n), ", ETA %d:%02d:%02d", eta / 3600, eta / 60 % 60,
                       eta % 60);
  }
  if (rows_failed > 0)
    std::snprintf(buf + n, sizeof(buf) - static_cast<size_t>(n), ", %llu errors",
                  static_cast<unsigned long long>(rows_failed));
  return buf;
}

void Progress::Update(uint64_t rows_done, uint64_t rows_failed, uint64_t offset) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < every_) return;
  last_ = now;
  if (terminal_) {
    std::fprintf(stderr, "\r\033[Kferry batch: %s", Line(rows_done, rows_failed, offset).c_str());
    std::fflush(stderr);
    drawn_ = true;
  } else {
    FERRY_LOG(kInfo, "batch progress", ("progress", Line(rows_done, rows_failed, offset)));
  }
}

void Progress::Finish() {
  if (drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
}

}  // namespace ferry::batch
