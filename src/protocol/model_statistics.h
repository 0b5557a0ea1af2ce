#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/status.h"

namespace ferry::protocol {

// The values of the statistics extension (GET /v2/models/{m}[/versions/{v}]/stats,
// gRPC ModelStatistics), in the shape of Triton's: what `ferry serve` reports for one
// model version and what the engine's gateway sums over the replicas it routes to.

// A count and the nanoseconds summed over it (Triton's StatisticDuration).
struct Duration {
  uint64_t count = 0;
  uint64_t ns = 0;
};

struct BatchStatistics {
  uint64_t batch_size = 0;
  Duration compute_input, compute_infer, compute_output;
};

// A copy of one model version's statistics.
struct StatisticsSnapshot {
  std::string name;
  std::string version;
  uint64_t last_inference_ms = 0;
  uint64_t inference_count = 0;
  uint64_t execution_count = 0;
  Duration success, fail, queue, compute_input, compute_infer, compute_output, cache_hit, cache_miss;
  std::vector<BatchStatistics> batches;  // ascending batch size
};

// The REST body: {"model_stats": [...]}, with Triton's field names.
std::string EncodeStatisticsJson(const std::vector<StatisticsSnapshot>& stats);
// Reads such a body back; an error names the field (`model_stats[1].inference_stats.queue.ns`).
Result<std::vector<StatisticsSnapshot>> DecodeStatisticsJson(std::string_view body);

// Sums several servers' statistics of the same models (the replicas of a deployment):
// entries of one name and version merge (counts and nanoseconds add, batch sizes merge,
// last_inference is the latest); the result is ordered by name, then version.
std::vector<StatisticsSnapshot> MergeStatistics(const std::vector<std::vector<StatisticsSnapshot>>& parts);

}  // namespace ferry::protocol
