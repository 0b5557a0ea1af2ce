#pragma once

#include <boost/program_options.hpp>

#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "monitoring/alert_loop.h"

namespace ferry::cli {

// The flags of ferry's own alerting, shared by `ferry serve` and `ferry engine`:
// --alert-rules, --alertmanager-url, --alert-webhook-url, --alert-interval-ms.
// `env` is the command's environment prefix, shown in the help ("FERRY_", "FERRY_ENGINE_").
void AddAlertingOptions(boost::program_options::options_description& desc, const std::string& env);

// With --alert-rules, the loop over `exposition` (the process's metrics text), not
// started yet (call Start once `exposition` can answer); null without it. Call it
// before starting anything: InvalidArgument for a bad rules file or a missing target.
// `generator_url`: where an alert's numbers come from (the metrics endpoint), or empty.
// `counted`: AlertLoopOptions::counted (deliveries, for ferry_alert_notifications_total).
Result<std::unique_ptr<monitoring::AlertLoop>> CreateAlerting(
    const boost::program_options::variables_map& vm, std::function<std::string()> exposition,
    const std::string& generator_url, std::function<void(const char*, const char*, uint64_t)> counted);

}  // namespace ferry::cli
