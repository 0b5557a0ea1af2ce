#pragma once

#include <boost/program_options.hpp>

#include <memory>
#include <string>

#include "core/result.h"
#include "monitoring/drift/drift_monitor.h"
#include "monitoring/monitoring_hub.h"
#include "monitoring/quality/feedback_monitor.h"
#include "monitoring/outliers/outlier_monitor.h"
#include "server/monitored_model.h"

namespace ferry::cli {

// The flags of in-server model monitoring for `ferry serve`: the hub's queue
// (--monitoring-queue-records, --monitoring-queue-bytes) and payload logging
// (--payload-log and --payload-log-*). docs/monitoring.md lists them.
void AddMonitoringOptions(boost::program_options::options_description& desc, const std::string& env);

struct Monitoring {
  std::unique_ptr<monitoring::MonitoringHub> hub;  // not started
  // The hub's drift consumer (owned by the hub): answers GET .../monitoring.
  monitoring::drift::DriftMonitor* drift = nullptr;
  // The hub's feedback consumer (owned by the hub): answers POST .../feedback.
  monitoring::quality::FeedbackMonitor* feedback = nullptr;
  // The hub's outlier consumer (owned by the hub): the server's response annotator, and
  // its summary in GET .../monitoring.
  monitoring::outliers::OutlierMonitor* outliers = nullptr;
  // Per-model defaults from the flags a user gave (a model's config overrides them).
  server::MonitoringDefaults defaults;
};

// The hub with its consumers (the payload log, drift, feedback), its metrics in `registry` (not owned;
// must outlive the hub). InvalidArgument naming the flag for a bad value.
Result<Monitoring> CreateMonitoring(const boost::program_options::variables_map& vm, prometheus::Registry* registry);

// The body of GET /v2/models/{m}[/versions/{v}]/monitoring: per version, its "drift"
// section and its "feedback" and "quality" sections, from whichever consumers monitor
// it; NOT_FOUND when neither does.
Result<std::string> MonitoringReportJson(const Monitoring& monitoring, std::string_view model, std::string_view version);

}  // namespace ferry::cli
