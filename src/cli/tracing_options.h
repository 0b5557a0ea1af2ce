#pragma once

#include <boost/program_options.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "monitoring/span_exporter.h"

namespace ferry::cli {

// The flags of OpenTelemetry tracing, shared by `ferry serve` and `ferry engine`:
// --trace-endpoint, --trace-sample-rate, --trace-service-name. `env` is the command's
// environment prefix shown in the help ("FERRY_", "FERRY_ENGINE_"); `service_name` the
// default service.name of its spans.
void AddTracingOptions(boost::program_options::options_description& desc, const std::string& env,
                       const std::string& service_name);

struct TracingSettings {
  std::string endpoint;  // empty: tracing off
  double sample_rate = 0.01;
  std::string service_name;
};

// The flags' values, checked: InvalidArgument naming the flag for a URL that is not
// http:// or a rate outside [0, 1].
Result<TracingSettings> ReadTracingOptions(const boost::program_options::variables_map& vm);

// The exporter's settings for them (service.version is this build's).
monitoring::SpanExporterOptions ExporterOptions(const TracingSettings& settings);

// A started exporter to settings.endpoint, or null when tracing is off. `counted` as
// monitoring::SpanExporter's (the process's span counter).
std::unique_ptr<monitoring::SpanExporter> StartSpanExporter(const TracingSettings& settings,
                                                            std::function<void(const char*, uint64_t)> counted);

}  // namespace ferry::cli
