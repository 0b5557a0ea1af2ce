#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "monitoring/alert_evaluator.h"
#include "monitoring/alert_notifier.h"

namespace ferry::monitoring {

struct AlertLoopOptions {
  std::string rules_file;        // required
  AlertNotifierOptions notifier;  // at least one of alertmanager_url and webhook_url
  Millis interval{15000};         // evaluation period
  // Deliveries as they happen, on the loop's thread: target "alertmanager" or "webhook",
  // result "sent", "failed" (a POST that will be retried with back-off) or "dropped"
  // (webhook messages pushed out of a full queue). May be empty.
  std::function<void(const char* target, const char* result, uint64_t n)> counted;
};

// Samples of a Prometheus text exposition (what a scrape reads): counters, gauges,
// untyped values and the _bucket/_sum/_count series of histograms and summaries.
// Lines that do not parse are skipped (the text comes from this process).
std::vector<MetricSample> ParseExposition(const std::string& text);

// ferry's own alerting: every `interval`, reads the process's metrics as a scrape
// would (`exposition`, the metrics endpoint's text), evaluates the rules and hands the
// result to the notifier, which posts to Alertmanager and/or a webhook. Firing and
// resolved alerts are logged.
// Threads: one, its own; `exposition` is called on it.
// Thread-safety: Create/Start/Stop by one owner thread.
class AlertLoop {
 public:
  static Result<std::unique_ptr<AlertLoop>> Create(AlertLoopOptions options, std::function<std::string()> exposition);
  ~AlertLoop();
  void Start();
  // Stops after the evaluation in progress (notifications still queued are dropped:
  // Alertmanager resolves firing alerts by their endsAt).
  void Stop();
  size_t rule_count() const { return evaluator_.rules().size(); }

 private:
  AlertLoop(AlertLoopOptions options, std::vector<AlertRule> rules, std::function<std::string()> exposition);
  void Run();

  const AlertLoopOptions options_;
  std::function<std::string()> exposition_;
  AlertEvaluator evaluator_;
  AlertNotifier notifier_;
  AlertNotifier::Counters reported_;  // what `counted` was told (posts hold the sent ones)
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace ferry::monitoring
