#include "cli/tracing_options.h"

#include <sstream>

#include "core/log.h"

namespace ferry::cli {
namespace po = boost::program_options;

void AddTracingOptions(po::options_description& desc, const std::string& env, const std::string& service_name) {
  // clang-format off
  desc.add_options()
    ("trace-endpoint", po::value<std::string>()->default_value(""), ("OTLP/HTTP traces URL (e.g. http://127.0.0.1:4318/v1/traces): export request spans there; empty disables [" + env + "TRACE_ENDPOINT]").c_str())
    ("trace-sample-rate", po::value<double>()->default_value(0.01), ("share of requests traced that carry no traceparent (one that does follows its sampled flag) [" + env + "TRACE_SAMPLE_RATE]").c_str())
    ("trace-service-name", po::value<std::string>()->default_value(service_name), ("service.name of the exported spans [" + env + "TRACE_SERVICE_NAME]").c_str());
  // clang-format on
}

Result<TracingSettings> ReadTracingOptions(const po::variables_map& vm) {
  TracingSettings s;
  s.endpoint = vm["trace-endpoint"].as<std::string>();
  s.sample_rate = vm["trace-sample-rate"].as<double>();
  s.service_name = vm["trace-service-name"].as<std::string>();
  if (!s.endpoint.empty() && s.endpoint.rfind("http://", 0) != 0)
    return InvalidArgument("--trace-endpoint must be an http:// URL, got '" + s.endpoint + "'");
  if (!(s.sample_rate >= 0 && s.sample_rate <= 1)) {
    std::ostringstream rate;
    rate << s.sample_rate;
    return InvalidArgument("--trace-sample-rate must be between 0 and 1, got " + rate.str());
  }
  return s;
}

monitoring::SpanExporterOptions ExporterOptions(const TracingSettings& settings) {
  monitoring::SpanExporterOptions t;
  t.endpoint = settings.endpoint;
  t.service_name = settings.service_name;
  t.service_version = FERRY_VERSION;
  return t;
}

std::unique_ptr<monitoring::SpanExporter> StartSpanExporter(const TracingSettings& settings,
                                                            std::function<void(const char*, uint64_t)> counted) {
  if (settings.endpoint.empty()) return nullptr;
  auto exporter = std::make_unique<monitoring::SpanExporter>(ExporterOptions(settings), std::move(counted));
  exporter->Start();
  FERRY_LOG(kInfo, "tracing", ("endpoint", settings.endpoint)("sample_rate", settings.sample_rate));
  return exporter;
}

}  // namespace ferry::cli
