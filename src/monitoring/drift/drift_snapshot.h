#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "monitoring/drift/drift_evaluation.h"
#include "monitoring/drift/drift_settings.h"

namespace ferry::monitoring::drift {

// What the monitoring endpoint shows of one model version's drift.
struct DriftSnapshot {
  std::string model, version;
  DriftSettings settings;
  uint64_t rows_total = 0;      // rows added since the version was attached
  uint64_t unmapped_total = 0;  // feature values a request did not carry
  uint64_t open_rows = 0;       // rows in the step being filled
  uint64_t evaluations = 0, alarms = 0;
  uint64_t evaluated_wall_ms = 0;  // when `last` was computed (0: never)
  std::optional<DriftEvaluation> last;
};

// The body of GET /v2/models/{m}[/versions/{v}]/monitoring for these versions (format in
// docs/monitoring.md): {"model": m, "versions": [{"version": v, "drift": {...}}]}.
std::string DriftSnapshotJson(const std::string& model, const std::vector<DriftSnapshot>& versions);

}  // namespace ferry::monitoring::drift
