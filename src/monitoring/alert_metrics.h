#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <string_view>

namespace ferry::monitoring {

// ferry_alert_notifications_total{target, result}: what ferry's own alerting delivered,
// in the registry of the process that evaluates the rules (`ferry serve` or `ferry
// engine`). Every target/result pair exists at 0 from the start.
// Thread-safety: thread-safe (prometheus-cpp counters).
class AlertMetrics {
 public:
  explicit AlertMetrics(prometheus::Registry& registry)
      : family_(prometheus::BuildCounter()
                    .Name("ferry_alert_notifications_total")
                    .Help("Alert notifications by target (alertmanager, webhook) and result (sent, failed, dropped)")
                    .Register(registry)) {
    for (const char* target : {"alertmanager", "webhook"})
      for (const char* result : {"sent", "failed", "dropped"})
        if (!(std::string_view(target) == "alertmanager" && std::string_view(result) == "dropped"))
          family_.Add({{"target", target}, {"result", result}});
  }
  // AlertLoopOptions::counted's signature.
  void Count(const char* target, const char* result, uint64_t n) {
    family_.Add({{"target", target}, {"result", result}}).Increment(static_cast<double>(n));
  }

 private:
  prometheus::Family<prometheus::Counter>& family_;
};

}  // namespace ferry::monitoring
