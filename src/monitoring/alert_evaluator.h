#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/clock.h"
#include "monitoring/alert_rules.h"

namespace ferry::monitoring {

using Labels = std::map<std::string, std::string>;

// One series' value at an evaluation (as a scrape would read it).
struct MetricSample {
  std::string name;
  Labels labels;
  double value = 0;
};

// A pending or firing alert: one rule and one group of its `by` labels.
struct Alert {
  std::string rule;
  Labels labels;       // alertname, the rule's labels, the group's labels
  Labels annotations;  // templates filled in with the latest value and labels
  double value = 0;
  bool firing = false;          // false: pending (condition true for less than `for`)
  uint64_t active_since_ms = 0;  // wall clock: when the condition became true
  uint64_t fired_at_ms = 0;      // wall clock: when it started firing
  std::string fingerprint;      // stable id of the label set (hex), as Alertmanager's
};

struct AlertTransition {
  enum class Kind { kFired, kResolved };
  Kind kind;
  Alert alert;
  uint64_t at_ms = 0;  // wall clock
};

// Evaluates alert rules over successive snapshots of a process's own metrics.
// rate/increase over a rule's window use the samples of earlier evaluations: the
// increase from the oldest sample in the window to now (counter resets counted as a
// restart from 0) divided by the time between them; a series first seen after the
// first evaluation counts as having been 0 at the previous evaluation (metrics of this
// process that appear are created at 0, so its first event is not lost). A group with no value (no series,
// a zero denominator, a rate with one sample) does not match. A condition that holds
// makes the alert pending, and firing once it has held for `for`; one that stops
// holding resolves a firing alert (a pending one just goes).
// A pure controller: inputs are the samples, the monotonic clock and the wall clock.
// Thread-safety: not thread-safe; one loop owns it.
class AlertEvaluator {
 public:
  // clock: not owned. wall_ms: the wall clock (Unix ms) for alert timestamps.
  AlertEvaluator(std::vector<AlertRule> rules, const Clock* clock, std::function<uint64_t()> wall_ms);

  // One evaluation of every rule at clock->NowNanos(); returns what fired or resolved.
  std::vector<AlertTransition> Evaluate(const std::vector<MetricSample>& samples);
  // Pending and firing alerts after the last evaluation, by rule then labels.
  std::vector<Alert> Active() const;
  const std::vector<AlertRule>& rules() const { return rules_; }

 private:
  struct Point {
    uint64_t t;
    double v;
  };
  struct Series {
    std::deque<Point> points;  // newest last
    uint64_t last_seen = 0;
  };
  // Per group: the value of one selector at this evaluation.
  std::map<Labels, double> Select(size_t rule, int which, const SeriesSelector& s, const std::vector<std::string>& by,
                                  const std::vector<MetricSample>& samples, uint64_t now);

  std::vector<AlertRule> rules_;
  const Clock* clock_;
  std::function<uint64_t()> wall_ms_;
  bool first_ = true;
  uint64_t last_eval_ = 0;  // monotonic time of the previous evaluation
  // (rule, selector 0/1, series labels incl. name) -> history, for rate and increase.
  std::map<std::tuple<size_t, int, Labels>, Series> history_;
  std::map<std::pair<size_t, Labels>, Alert> active_;  // (rule, group labels)
  std::map<std::pair<size_t, Labels>, uint64_t> since_ns_;  // monotonic: condition true since
};

// The alert's label set as Alertmanager fingerprints it: a 64-bit FNV-1a hash of the
// sorted names and values, in hex (stable across restarts).
std::string Fingerprint(const Labels& labels);

}  // namespace ferry::monitoring
