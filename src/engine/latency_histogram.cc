#include "engine/latency_histogram.h"

#include <cmath>

namespace ferry::engine {
namespace {
constexpr double kFirstEdge = 50e-6;
constexpr double kFactor = 1.1;
}  // namespace

int LatencyHistogram::Bucket(double seconds) {
  if (!(seconds > kFirstEdge)) return 0;  // NaN too
  // Bucket i (i >= 1) holds (edge(i-1), edge(i)], edge(i) = first * factor^i.
  const int i = static_cast<int>(std::ceil(std::log(seconds / kFirstEdge) / std::log(kFactor) - 1e-9));
  return i >= kBuckets ? kBuckets - 1 : i;
}

double LatencyHistogram::UpperEdge(int i) { return kFirstEdge * std::pow(kFactor, i); }

std::optional<double> LatencyHistogram::Quantile(const Counts& counts, double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return std::nullopt;
  // The smallest bucket whose cumulative count reaches ceil(q * total).
  const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total) - 1e-9));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    if (counts[i] == 0) continue;
    if (seen + counts[i] >= rank) {
      const double lower = i == 0 ? 0.0 : UpperEdge(i - 1);
      const double frac = static_cast<double>(rank - seen) / static_cast<double>(counts[i]);
      return lower + (UpperEdge(i) - lower) * frac;
    }
    seen += counts[i];
  }
  return UpperEdge(kBuckets - 1);
}

}  // namespace ferry::engine
