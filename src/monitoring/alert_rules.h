#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace ferry::monitoring {

using Millis = std::chrono::milliseconds;

// What a rule reads from one metric: the series of `metric` (a counter, gauge, or a
// histogram's `_count`, `_sum` or `_bucket`) whose labels equal every `match` pair,
// taken as they are (`value`), or as their per-second `rate` or `increase` over `window`.
struct SeriesSelector {
  enum class Function { kValue, kRate, kIncrease };
  std::string metric;
  std::vector<std::pair<std::string, std::string>> match;
  Function function = Function::kValue;
  Millis window{300000};
};

// One alert rule of ferry's own alerting (docs/observability.md "ferry's own alerting"):
// the selected series, summed per group of the `by` labels (one group without them),
// optionally divided by a second selection grouped the same way, compared with a
// threshold; true for `for_` makes the alert fire.
struct AlertRule {
  enum class Op { kGt, kGe, kLt, kLe, kEq, kNe };
  std::string name;  // the alertname label
  SeriesSelector expr;
  std::optional<SeriesSelector> divide_by;
  std::vector<std::string> by;
  Op op = Op::kGt;
  double threshold = 0;
  Millis for_{0};
  std::vector<std::pair<std::string, std::string>> labels;       // added to the alert's
  std::vector<std::pair<std::string, std::string>> annotations;  // {{ $value }}, {{ $labels.x }}
  int line = 0;  // in the rules file, for messages
};

// Parses a rules file:
//   rules:
//   - alert: FerryModelErrors
//     metric: ferry_inference_failures_total
//     match: {model: iris}              # optional
//     function: rate                    # value (default) | rate | increase
//     window: 5m                        # for rate and increase (default 5m)
//     by: [model]                       # optional
//     divide_by: {metric: ..., match: ..., function: ..., window: ...}   # optional
//     condition: "> 0.05"               # > >= < <= == != and a number
//     for: 1m                           # default 0s
//     labels: {severity: page}
//     annotations: {summary: "errors at {{ $value }} for {{ $labels.model }}"}
// Errors name the file, line, column and field. Names must be unique.
Result<std::vector<AlertRule>> ParseAlertRules(const std::string& text, const std::string& file);
Result<std::vector<AlertRule>> LoadAlertRulesFile(const std::string& path);

}  // namespace ferry::monitoring
