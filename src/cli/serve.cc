#include "cli/serve.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>

#include "cli/alerting_options.h"
#include "cli/tracing_options.h"
#include "cli/monitoring_options.h"
#include "cli/options.h"
#include "cli/server_setup.h"
#include "cli/shutdown_signals.h"
#include "core/log.h"
#include "frontend/grpc/grpc_server.h"
#include "frontend/grpc_native/native_grpc_server.h"
#include "frontend/http/http_server.h"
#include "frontend/http/v2_handler.h"
#include "monitoring/alert_metrics.h"
#include "monitoring/request_tracer.h"
#include "monitoring/span_exporter.h"
#include "server/server.h"

namespace ferry::cli {
namespace po = boost::program_options;

namespace {

Result<server::ControlMode> ParseMode(const std::string& m) {
  if (m == "none") return server::ControlMode::kNone;
  if (m == "poll") return server::ControlMode::kPoll;
  if (m == "explicit") return server::ControlMode::kExplicit;
  return InvalidArgument("--model-control-mode must be none, poll or explicit, not '" + m + "'");
}

}  // namespace

int Serve(int argc, char** argv) {
  po::options_description desc(
      "usage: ferry serve --model-repository DIR [options]\n\n"
      "Serves every model in the repository over REST and gRPC (Open Inference Protocol /\n"
      "KServe V2, Triton-compatible) and exports Prometheus metrics. Each option can also be set\n"
      "through the environment variable named in brackets; a flag wins over the variable.\n\n"
      "options",
      /*line_length=*/120, /*min_description_length=*/70);
  // clang-format off
  desc.add_options()
    ("help,h", "print this help");
  AddModelOptions(desc, "FERRY_");
  desc.add_options()
    ("http-address", po::value<std::string>()->default_value("0.0.0.0"), "address to listen on [FERRY_HTTP_ADDRESS]")
    ("http-port", po::value<uint16_t>()->default_value(8000), "REST port [FERRY_HTTP_PORT]")
    ("grpc-port", po::value<uint16_t>()->default_value(8001), "gRPC port (GRPCInferenceService, health, reflection), 0 disables [FERRY_GRPC_PORT]")
    ("grpc-max-message-size", po::value<int>()->default_value(64 << 20), "largest gRPC message in bytes, either direction [FERRY_GRPC_MAX_MESSAGE_SIZE]")
    ("grpc-transport", po::value<std::string>()->default_value("native"), "what carries gRPC: native (ferry's HTTP/2 transport on libnghttp2, on event loops like REST's) or grpc++ (the gRPC C++ library); same services and answers [FERRY_GRPC_TRANSPORT]")
    ("metrics-port", po::value<uint16_t>()->default_value(8002), "Prometheus metrics port, 0 disables [FERRY_METRICS_PORT]")
    ("http-threads", po::value<int>()->default_value(0), "HTTP event loops, 0 = one per available core [FERRY_HTTP_THREADS]")
    ("inline-execution-us", po::value<int>()->default_value(50), "run a model version without dynamic batching on the REST IO thread / gRPC completion-queue thread that received the request, skipping the hand-off to a worker, while its executions average at most this many microseconds per row (ONNX Runtime and XGBoost models; never Python, plugin or libtorch ones); 0 disables [FERRY_INLINE_EXECUTION_US]")
    ("http-max-input-size", po::value<uint64_t>()->default_value(64ull << 20), "largest request body in bytes, after decompression [FERRY_HTTP_MAX_INPUT_SIZE]")
    ("model-control-mode", po::value<std::string>()->default_value("none"), "none | poll | explicit [FERRY_MODEL_CONTROL_MODE]")
    ("load-model", po::value<std::vector<std::string>>()->composing(), "explicit mode: model to load at start; repeat; '*' for all [FERRY_LOAD_MODEL]")
    ("repository-poll-secs", po::value<int>()->default_value(15), "poll mode: seconds between repository scans [FERRY_REPOSITORY_POLL_SECS]")
    ("response-cache-bytes", po::value<uint64_t>()->default_value(128ull << 20), "response cache size in bytes, for models with response_cache { enable: true }; 0 disables [FERRY_RESPONSE_CACHE_BYTES]")
    ("shutdown-grace-ms", po::value<int>()->default_value(10000), "at SIGTERM, how long requests in flight get to finish; then running executions are stopped [FERRY_SHUTDOWN_GRACE_MS]")
    ("log-level", po::value<std::string>()->default_value("info"), "debug | info | warning | error [FERRY_LOG_LEVEL]")
    ("log-format", po::value<std::string>()->default_value("text"), "text (logfmt key=value) | json (one object per line) [FERRY_LOG_FORMAT]")
    ("log-requests", po::value<bool>()->default_value(false)->implicit_value(true), "log one info line per answered request: model, version, id, protocol, status, duration, trace id; --log-requests or --log-requests=true [FERRY_LOG_REQUESTS]");
  // clang-format on
  AddAlertingOptions(desc, "FERRY_");
  AddMonitoringOptions(desc, "FERRY_");
  AddTracingOptions(desc, "FERRY_", "ferry");

  ParsedOptions parsed = ParseOptions(argc, argv, desc, "FERRY_", "serve");
  if (parsed.exit_code >= 0) return parsed.exit_code;
  const po::variables_map& vm = parsed.vm;
  const std::string transport = vm["grpc-transport"].as<std::string>();
  if (transport != "grpc++" && transport != "native") {
    std::cerr << "ferry serve: --grpc-transport: '" << transport << "' is not grpc++ or native\n";
    return 2;
  }

  // Alert rules are checked before anything starts; the loop reads the server's metrics
  // once it runs.
  server::Server* alert_source = nullptr;
  std::unique_ptr<monitoring::AlertMetrics> alert_counts;  // set with alert_source
  std::unique_ptr<monitoring::AlertLoop> alerting;
  {
    const std::string metrics_url =
        vm["metrics-port"].as<uint16_t>() == 0
            ? ""
            : "http://" + vm["http-address"].as<std::string>() + ":" + std::to_string(vm["metrics-port"].as<uint16_t>()) +
                  "/metrics";
    auto created = CreateAlerting(
        vm, [&alert_source] { return alert_source->metrics().Serialize(); }, metrics_url,
        [&alert_counts](const char* target, const char* result, uint64_t n) { alert_counts->Count(target, result, n); });
    if (!created.ok()) {
      std::cerr << "ferry serve: " << created.status().message() << "\n";
      return 2;
    }
    alerting = std::move(created).value();
  }

  auto tracing = ReadTracingOptions(vm);
  if (!tracing.ok()) {
    std::cerr << "ferry serve: " << tracing.status().message() << "\n";
    return 2;
  }

  server::ServerOptions options;
  if (Status flags = ModelOptionsFromFlags(vm, &options.models); !flags.ok()) {
    std::cerr << "ferry serve: " << flags.message() << "\n\n" << desc << "\n";
    return 2;
  }
  auto mode = ParseMode(vm["model-control-mode"].as<std::string>());
  if (!mode.ok()) {
    std::cerr << "ferry serve: " << mode.status().message() << "\n";
    return 2;
  }
  options.models.mode = *mode;
  if (vm.count("load-model")) options.models.startup_models = vm["load-model"].as<std::vector<std::string>>();
  options.models.poll_seconds = vm["repository-poll-secs"].as<int>();
  if (const int us = vm["inline-execution-us"].as<int>(); us < 0) {
    std::cerr << "ferry serve: --inline-execution-us must be 0 or more, not " << us << "\n";
    return 2;
  } else {
    options.models.inline_execution_us = static_cast<uint64_t>(us);
  }
  options.response_cache_bytes = vm["response-cache-bytes"].as<uint64_t>();
  options.log_requests = vm["log-requests"].as<bool>();

  // Signals are taken synchronously by the main thread; block them before any thread
  // starts so every thread inherits the mask.
  BlockShutdownSignals();

  auto built = RuntimesFromFlags(vm);
  if (!built.ok()) {
    FERRY_LOG(kError, "cannot start a runtime", ("error", built.status().message()));
    return 1;
  }
  std::unique_ptr<runtime::RuntimeRegistry> runtimes = std::move(built).value();

  auto server = server::Server::Create(std::move(options), std::move(runtimes));
  if (!server.ok()) {
    FERRY_LOG(kError, "cannot create server", ("error", server.status().message()));
    return 1;
  }
  alert_source = server->get();
  alert_counts = std::make_unique<monitoring::AlertMetrics>(*alert_source->metrics().registry());
  // Monitoring is fed by the server and outlives it: stopped after the server's shutdown,
  // it sees every answer and flushes its sinks.
  auto monitor = CreateMonitoring(vm, (*server)->metrics().registry());
  if (!monitor.ok()) {
    std::cerr << "ferry serve: " << monitor.status().message() << "\n";
    return 2;
  }
  (*server)->SetMonitoringHub(monitor->hub.get(), monitor->defaults);
  (*server)->SetResponseAnnotator(monitor->outliers);
  (*server)->SetMonitoringReport([monitoring = &*monitor](std::string_view m, std::string_view v) {
    return MonitoringReportJson(*monitoring, m, v);
  });
  (*server)->SetFeedbackHandler([feedback = monitor->feedback](std::string_view m, std::string_view v,
                                                               std::string_view body) -> Result<server::Server::FeedbackAnswer> {
    FERRY_ASSIGN_OR_RETURN(auto reply, feedback->Feedback(m, v, body));
    return server::Server::FeedbackAnswer{std::move(reply.json), reply.all_joined};
  });
  monitor->hub->Start();
  std::unique_ptr<monitoring::SpanExporter> span_exporter = StartSpanExporter(
      *tracing, [srv = server->get()](const char* result, uint64_t n) { srv->metrics().TraceSpans(result, n); });
  std::unique_ptr<monitoring::RequestTracer> tracer;
  if (span_exporter) {
    tracer = std::make_unique<monitoring::RequestTracer>(tracing->sample_rate, span_exporter.get());
    (*server)->SetTracer(tracer.get());
  }
  Status started = (*server)->Start();
  if (!started.ok()) {
    FERRY_LOG(kError, "cannot start server", ("error", started.message()));
    return 1;
  }

  const uint64_t max_body = vm["http-max-input-size"].as<uint64_t>();
  frontend::http::V2HandlerOptions v2;
  v2.max_body_bytes = max_body;
  v2.server_version = FERRY_VERSION;
  auto handler = std::make_shared<frontend::http::V2Handler>(server->get(), v2);
  frontend::http::HttpServerOptions http_opts;
  http_opts.address = vm["http-address"].as<std::string>();
  http_opts.port = vm["http-port"].as<uint16_t>();
  http_opts.threads = vm["http-threads"].as<int>();
  http_opts.max_body_bytes = max_body;
  http_opts.name = "http";
  auto http = frontend::http::HttpServer::Create(
      http_opts, [handler](frontend::http::Request&& r, frontend::http::Responder done,
                           frontend::http::ClientGone gone) { handler->Handle(std::move(r), std::move(done), std::move(gone)); });
  Status s = (*http)->Start();
  if (!s.ok()) {
    FERRY_LOG(kError, "cannot start REST frontend", ("error", s.message()));
    return 1;
  }
  std::unique_ptr<frontend::http::HttpServer> metrics_http;
  if (vm["metrics-port"].as<uint16_t>() != 0) {
    frontend::http::HttpServerOptions m;
    m.address = http_opts.address;
    m.port = vm["metrics-port"].as<uint16_t>();
    m.threads = 1;
    m.max_body_bytes = 1 << 20;
    m.name = "metrics";
    auto created = frontend::http::HttpServer::Create(m, frontend::http::MetricsHandler(server->get()));
    metrics_http = std::move(created).value();
    s = metrics_http->Start();
    if (!s.ok()) {
      FERRY_LOG(kError, "cannot start metrics endpoint", ("error", s.message()));
      return 1;
    }
  }
  std::unique_ptr<frontend::grpc::GrpcServer> grpc;
  std::unique_ptr<frontend::grpc_native::NativeGrpcServer> native_grpc;
  if (vm["grpc-port"].as<uint16_t>() != 0) {
    frontend::grpc::GrpcServerOptions g;
    g.address = http_opts.address;
    g.port = vm["grpc-port"].as<uint16_t>();
    g.max_message_bytes = vm["grpc-max-message-size"].as<int>();
    g.server_version = FERRY_VERSION;
    if (transport == "native") {
      native_grpc = std::move(frontend::grpc_native::NativeGrpcServer::Create(g, server->get())).value();
      s = native_grpc->Start();
    } else {
      grpc = std::move(frontend::grpc::GrpcServer::Create(g, server->get())).value();
      s = grpc->Start();
    }
    if (!s.ok()) {
      FERRY_LOG(kError, "cannot start gRPC frontend", ("error", s.message()));
      return 1;
    }
  }
  if (alerting) alerting->Start();
  FERRY_LOG(kInfo, "server ready", ("http_port", (*http)->port())("grpc_port", grpc ? grpc->port() : native_grpc ? native_grpc->port() : 0));

  int sig = WaitForShutdownSignal();
  if (alerting) alerting->Stop();
  FERRY_LOG(kInfo, "shutting down: finishing in-flight requests", ("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
  // Order matters: connections finish the requests they are receiving while the server
  // still executes, then the server drains whatever is left.
  (*server)->BeginShutdown();
  // One grace period for both frontends together, not one each.
  const auto grace_end = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(std::max(0, vm["shutdown-grace-ms"].as<int>()));
  auto grace_left_ms = [&grace_end] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(grace_end - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
  };
  (*http)->Stop(grace_left_ms());
  if (grpc) grpc->Shutdown(grace_left_ms());
  if (native_grpc) native_grpc->Shutdown(grace_left_ms());
  // The frontends have had their grace: abandon whatever still runs (a hung model).
  (*server)->Shutdown(0);
  monitor->hub->Stop();  // logs what is queued, then flushes the sinks
  if (span_exporter) span_exporter->Stop();  // exports the spans still queued
  if (metrics_http) metrics_http->Stop();
  handler.reset();
  FERRY_LOG(kInfo, "shutdown complete", );
  return 0;
}

}  // namespace ferry::cli
