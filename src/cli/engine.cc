#include "cli/engine.h"

#include <boost/program_options.hpp>
#include <iostream>

#include "cli/alerting_options.h"
#include "cli/options.h"
#include "cli/tracing_options.h"
#include "cli/shutdown_signals.h"
#include "core/log.h"
#include "engine/engine.h"
#include "monitoring/alert_metrics.h"

namespace ferry::cli {
namespace po = boost::program_options;

int Engine(int argc, char** argv) {
  po::options_description desc(
      "usage: ferry engine --state-dir DIR [--config spec.yaml] [options]\n\n"
      "Runs the deployments of a spec as supervised `ferry serve` replicas on loopback ports, behind\n"
      "Open Inference Protocol gateways (REST and gRPC) that route by model name. Without --config, the\n"
      "deployments stored in DIR come back (none: add them with `ferry deploy`). Each option can also be set through the environment\n"
      "variable named in brackets; a flag wins over the variable. See docs/engine.md.\n\n"
      "options",
      /*line_length=*/120, /*min_description_length=*/70);
  // clang-format off
  desc.add_options()
    ("help,h", "print this help")
    ("config", po::value<std::string>(), "deployment spec (YAML); becomes the stored desired state [FERRY_ENGINE_CONFIG]")
    ("state-dir", po::value<std::string>(), "folder of the state database, replica logs and status.json [FERRY_ENGINE_STATE_DIR]")
    ("http-address", po::value<std::string>()->default_value("0.0.0.0"), "gateway address [FERRY_ENGINE_HTTP_ADDRESS]")
    ("http-port", po::value<uint16_t>()->default_value(8080), "gateway REST port [FERRY_ENGINE_HTTP_PORT]")
    ("http-threads", po::value<int>()->default_value(0), "gateway event loops, 0 = one per available core [FERRY_ENGINE_HTTP_THREADS]")
    ("http-max-input-size", po::value<uint64_t>()->default_value(64ull << 20), "largest request body in bytes [FERRY_ENGINE_HTTP_MAX_INPUT_SIZE]")
    ("grpc-port", po::value<uint16_t>()->default_value(8081), "gateway gRPC port (GRPCInferenceService, health, reflection) on --http-address, 0 disables [FERRY_ENGINE_GRPC_PORT]")
    ("grpc-threads", po::value<int>()->default_value(0), "gRPC gateway completion queues (one thread each), 0 = one per available core [FERRY_ENGINE_GRPC_THREADS]")
    ("grpc-max-message-size", po::value<int>()->default_value(64 << 20), "largest gRPC message in bytes, either direction [FERRY_ENGINE_GRPC_MAX_MESSAGE_SIZE]")
    ("grpc-transport", po::value<std::string>()->default_value("native"), "what carries the gRPC gateway, to clients and to replicas: native (ferry's HTTP/2 transport on libnghttp2, on event loops) or grpc++ (the gRPC C++ library); same methods and answers [FERRY_ENGINE_GRPC_TRANSPORT]")
    ("metrics-port", po::value<uint16_t>()->default_value(8092), "Prometheus metrics of the engine (gateway, replicas, scaling), 0 disables [FERRY_ENGINE_METRICS_PORT]")
    ("admin-address", po::value<std::string>()->default_value("127.0.0.1"), "admin API address (loopback by default) [FERRY_ENGINE_ADMIN_ADDRESS]")
    ("admin-port", po::value<uint16_t>()->default_value(8090), "admin API port (REST/JSON: ferry deploy, status, scale, delete, logs), 0 disables [FERRY_ENGINE_ADMIN_PORT]")
    ("tick-ms", po::value<int>()->default_value(100), "control loop period: autoscaler samples, readiness probes [FERRY_ENGINE_TICK_MS]")
    ("log-level", po::value<std::string>()->default_value("info"), "debug | info | warning | error [FERRY_ENGINE_LOG_LEVEL]")
    ("log-format", po::value<std::string>()->default_value("text"), "text (logfmt key=value) | json (one object per line) [FERRY_ENGINE_LOG_FORMAT]");
  // clang-format on
  AddAlertingOptions(desc, "FERRY_ENGINE_");
  AddTracingOptions(desc, "FERRY_ENGINE_", "ferry-engine");
  // FERRY_ENGINE_*: the prefix keeps the engine's variables apart from `ferry serve`'s
  // (which replicas never inherit).
  ParsedOptions parsed = ParseOptions(argc, argv, desc, "FERRY_ENGINE_", "engine");
  if (parsed.exit_code >= 0) return parsed.exit_code;
  const po::variables_map& vm = parsed.vm;
  if (!vm.count("state-dir")) {
    std::cerr << "ferry engine: --state-dir is required\n\n" << desc << "\n";
    return 2;
  }
  if (vm["tick-ms"].as<int>() < 10) {
    std::cerr << "ferry engine: --tick-ms must be at least 10\n";
    return 2;
  }
  if (const auto& t = vm["grpc-transport"].as<std::string>(); t != "native" && t != "grpc++") {
    std::cerr << "ferry engine: --grpc-transport: '" << t << "' is not native or grpc++\n";
    return 2;
  }

  auto tracing = ReadTracingOptions(vm);
  if (!tracing.ok()) {
    std::cerr << "ferry engine: " << tracing.status().message() << "\n";
    return 2;
  }

  // Alert rules over the engine's own metrics, checked before anything starts.
  engine::Engine* alert_source = nullptr;
  std::unique_ptr<monitoring::AlertMetrics> alert_counts;  // set with alert_source
  std::unique_ptr<monitoring::AlertLoop> alerting;
  {
    const uint16_t mport = vm["metrics-port"].as<uint16_t>();
    const std::string metrics_url =
        mport == 0 ? "" : "http://" + vm["http-address"].as<std::string>() + ":" + std::to_string(mport) + "/metrics";
    auto created = CreateAlerting(
        vm, [&alert_source] { return alert_source->MetricsText(); }, metrics_url,
        [&alert_counts](const char* target, const char* result, uint64_t n) { alert_counts->Count(target, result, n); });
    if (!created.ok()) {
      std::cerr << "ferry engine: " << created.status().message() << "\n";
      return 2;
    }
    alerting = std::move(created).value();
  }

  // Signals are taken by this thread; block them before any thread starts. Replicas get
  // an empty mask (LaunchChild), so this does not reach them.
  BlockShutdownSignals();

  engine::EngineOptions options;
  options.state_dir = vm["state-dir"].as<std::string>();
  if (vm.count("config")) options.config_path = vm["config"].as<std::string>();
  options.gateway.address = vm["http-address"].as<std::string>();
  options.gateway.port = vm["http-port"].as<uint16_t>();
  options.gateway.threads = vm["http-threads"].as<int>();
  options.gateway.max_body_bytes = vm["http-max-input-size"].as<uint64_t>();
  options.gateway.version = FERRY_VERSION;
  options.grpc_gateway.address = options.gateway.address;
  options.grpc_gateway.port = vm["grpc-port"].as<uint16_t>();
  options.grpc_gateway.threads = vm["grpc-threads"].as<int>();
  options.grpc_gateway.max_message_bytes = vm["grpc-max-message-size"].as<int>();
  options.grpc_gateway.version = FERRY_VERSION;
  options.grpc_gateway.transport = vm["grpc-transport"].as<std::string>();
  options.tick = std::chrono::milliseconds(vm["tick-ms"].as<int>());
  options.metrics_port = vm["metrics-port"].as<uint16_t>();
  options.admin.address = vm["admin-address"].as<std::string>();
  options.admin.port = vm["admin-port"].as<uint16_t>();
  if (!tracing->endpoint.empty()) options.tracing = ExporterOptions(*tracing);
  options.trace_sample_rate = tracing->sample_rate;

  auto engine = engine::Engine::Create(options);
  if (!engine.ok()) {
    std::cerr << "ferry engine: " << engine.status().message() << "\n";
    return engine.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  Status s = (*engine)->Start();
  if (!s.ok()) {
    FERRY_LOG(kError, "cannot start the engine", ("error", s.message()));
    return 1;
  }
  alert_source = engine->get();
  alert_counts = std::make_unique<monitoring::AlertMetrics>(*alert_source->metrics_registry());
  if (alerting) alerting->Start();
  FERRY_LOG(kInfo, "engine running", ("gateway_port", (*engine)->gateway_port())("grpc_port", (*engine)->grpc_port())(
                                          "metrics_port", (*engine)->metrics_port())("admin_port", (*engine)->admin_port())("state_dir", options.state_dir));
  const int sig = WaitForShutdownSignal();
  if (alerting) alerting->Stop();
  FERRY_LOG(kInfo, "engine stopping: draining the gateway, then the replicas",
            ("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
  (*engine)->Stop();
  FERRY_LOG(kInfo, "engine stopped", );
  return 0;
}

}  // namespace ferry::cli
