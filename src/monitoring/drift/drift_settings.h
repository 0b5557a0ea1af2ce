#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "core/result.h"
#include "monitoring/drift/drift_evaluation.h"

namespace ferry::monitoring::drift {

// A model version's drift settings, read from its monitoring settings (the keys that
// start with "drift."; others belong to other consumers). Defaults in the comments; the
// table is in docs/monitoring.md.
struct DriftSettings {
  bool enabled = false;              // drift.enabled: true | false
  std::filesystem::path profile;     // drift.profile: default <model dir>/profile.json
  // drift.window: a row count ("1000", the default) or a duration ("30s", "5m", "1h",
  // "500ms"). The window slides in `buckets` steps: every window/buckets rows (or that
  // much time) the oldest step leaves, the newest enters, and the window is due for an
  // evaluation (see eval_interval).
  bool window_is_time = false;
  uint64_t window_rows = 1000;
  uint64_t window_ns = 0;
  uint32_t buckets = 4;    // drift.buckets: 1..64
  // drift.eval_interval: a duration ("1s", the default; "250ms", "5m") or 0. A window is
  // evaluated when a step closes, but at most once per this interval: a step that closes
  // sooner leaves the window pending, evaluated by the next step or tick (about once a
  // second) after the interval, or at once by GET .../monitoring. 0: at every step.
  uint64_t eval_interval_ns = 1'000'000'000;
  uint64_t min_rows = 100;  // drift.min_rows: a time window with fewer rows is not evaluated
  uint32_t max_features = 512;  // drift.max_features: a profile with more is refused
  uint32_t metrics_top_k = 20;  // drift.metrics_top_k: per-feature series kept per version
  // drift.sketch_k (8..65536): accepted for older configurations; unused since windows
  // count values exactly in the reference's knots (FeatureSketch::ExactWindow).
  uint32_t sketch_k = 200;
  DriftOptions test;            // drift.alpha, drift.correction, drift.test.numeric,
                                // drift.test.categorical, drift.psi_threshold
};

// INVALID_ARGUMENT naming the setting ("monitoring.drift.alpha: '2' is not in (0, 1)")
// for a bad value or an unknown drift.* key.
Result<DriftSettings> ParseDriftSettings(const std::map<std::string, std::string, std::less<>>& settings,
                                         const std::filesystem::path& model_dir);

}  // namespace ferry::monitoring::drift
