#include "cli/stream.h"

#include <boost/program_options.hpp>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/options.h"
#include "cli/server_setup.h"
#include "cli/shutdown_signals.h"
#include "core/log.h"
#include "frontend/http/http_server.h"
#include "server/server.h"
#include "stream/stream_processor.h"

namespace ferry::cli {
namespace po = boost::program_options;

int Stream(int argc, char** argv) {
  po::options_description desc(
      "usage: ferry stream --model-repository DIR --brokers HOST:PORT --input-topic T --output-topic T [options]\n\n"
      "Reads messages from Kafka topics in a consumer group, runs each through a model in this process\n"
      "(the same server and runtimes as `ferry serve`, dynamic batching included), and writes one V2 JSON\n"
      "response per message to the output topic, keyed like the input. Exactly-once by default: outputs,\n"
      "dead letters and input offsets are committed in one Kafka transaction (read the output with\n"
      "isolation.level=read_committed). Messages that fail go to the dead-letter topic with the error in\n"
      "their headers. SIGTERM commits the open transaction and leaves the group. Each option can also be\n"
      "set through the environment variable named in brackets. See docs/streaming.md.\n\n"
      "options",
      /*line_length=*/120, /*min_description_length=*/70);
  // clang-format off
  desc.add_options()
    ("help,h", "print this help")
    ("brokers", po::value<std::string>(), "Kafka bootstrap servers, HOST:PORT[,HOST:PORT...] [FERRY_STREAM_BROKERS]")
    ("input-topic", po::value<std::vector<std::string>>()->composing(), "topic(s) to read, comma-separated or repeated [FERRY_STREAM_INPUT_TOPIC]")
    ("output-topic", po::value<std::string>(), "topic for the responses [FERRY_STREAM_OUTPUT_TOPIC]")
    ("dead-letter-topic", po::value<std::string>()->default_value(""), "topic for messages that fail; default: OUTPUT-TOPIC.dead-letter [FERRY_STREAM_DEAD_LETTER_TOPIC]")
    ("group", po::value<std::string>()->default_value("ferry-stream"), "consumer group (group.id); processes in one group share the partitions [FERRY_STREAM_GROUP]")
    ("instance-id", po::value<std::string>()->default_value(""), "a name this process keeps across restarts (e.g. the pod name): static group membership and transactional.id GROUP.ID, so a restart resumes at once [FERRY_STREAM_INSTANCE_ID]")
    ("guarantee", po::value<std::string>()->default_value("exactly-once"), "exactly-once (Kafka transactions) | at-least-once (offsets stored after delivery) [FERRY_STREAM_GUARANTEE]")
    ("format", po::value<std::string>()->default_value("v2"), "message values: v2 (a V2 inference request) | json (one JSON object, a row) | csv (one CSV line, a row) [FERRY_STREAM_FORMAT]")
    ("model", po::value<std::string>()->default_value(""), "model to run; a message's ferry-model header overrides it; required for json/csv [FERRY_STREAM_MODEL]")
    ("model-version", po::value<std::string>()->default_value(""), "version to run; default: the latest; header ferry-model-version overrides it [FERRY_STREAM_MODEL_VERSION]")
    ("columns", po::value<std::vector<std::string>>()->composing(), "json/csv: the row's columns in order, NAME or NAME:WIDTH (a JSON array), comma-separated; default for json: one per model input [FERRY_STREAM_COLUMNS]")
    ("map", po::value<std::vector<std::string>>()->composing(), "json/csv: COLUMN:INPUT, feed a column to a model input; several for one input concatenate [FERRY_STREAM_MAP]")
    ("batch-size", po::value<int>()->default_value(64), "most messages taken and inferred at once [FERRY_STREAM_BATCH_SIZE]")
    ("linger-ms", po::value<int>()->default_value(5), "how long to wait for a batch to fill once it has a message [FERRY_STREAM_LINGER_MS]")
    ("commit-interval-ms", po::value<int>()->default_value(100), "exactly-once: how long a transaction stays open before it is committed [FERRY_STREAM_COMMIT_INTERVAL_MS]")
    ("transaction-timeout-ms", po::value<int>()->default_value(60000), "transaction.timeout.ms: the broker aborts an open transaction of a vanished process after this [FERRY_STREAM_TRANSACTION_TIMEOUT_MS]")
    ("statistics-interval-ms", po::value<int>()->default_value(5000), "librdkafka statistics (the consumer lag metric) this often; 0 disables [FERRY_STREAM_STATISTICS_INTERVAL_MS]")
    ("auto-offset-reset", po::value<std::string>()->default_value("earliest"), "where a group with no committed offset starts: earliest | latest [FERRY_STREAM_AUTO_OFFSET_RESET]")
    ("kafka", po::value<std::vector<std::string>>()->composing(), "KEY=VALUE: a librdkafka property for both clients (security.protocol, sasl.*, session.timeout.ms...); repeatable [FERRY_STREAM_KAFKA]")
    ("metrics-address", po::value<std::string>()->default_value("0.0.0.0"), "address of the metrics endpoint [FERRY_STREAM_METRICS_ADDRESS]")
    ("metrics-port", po::value<uint16_t>()->default_value(8002), "Prometheus metrics port (/metrics), 0 disables [FERRY_STREAM_METRICS_PORT]");
  // clang-format on
  AddModelOptions(desc, "FERRY_STREAM_");
  AddLogOptions(desc, "FERRY_STREAM_");

  ParsedOptions parsed = ParseOptions(argc, argv, desc, "FERRY_STREAM_", "stream");
  if (parsed.exit_code >= 0) return parsed.exit_code;
  const po::variables_map& vm = parsed.vm;
  auto usage = [&desc](const std::string& message) {
    std::cerr << "ferry stream: " << message << "\n\n" << desc << "\n";
    return 2;
  };
  for (const char* required : {"brokers", "input-topic", "output-topic"})
    if (!vm.count(required)) return usage(std::string("--") + required + " is required");

  stream::StreamOptions so;
  so.brokers = vm["brokers"].as<std::string>();
  so.input_topics = SplitCommaList(vm["input-topic"].as<std::vector<std::string>>());
  so.output_topic = vm["output-topic"].as<std::string>();
  so.dead_letter_topic = vm["dead-letter-topic"].as<std::string>();
  if (so.dead_letter_topic.empty()) so.dead_letter_topic = so.output_topic + ".dead-letter";
  so.group = vm["group"].as<std::string>();
  if (so.group.empty()) return usage("--group must not be empty");
  so.instance_id = vm["instance-id"].as<std::string>();
  const std::string guarantee = vm["guarantee"].as<std::string>();
  if (guarantee == "exactly-once") so.guarantee = stream::Guarantee::kExactlyOnce;
  else if (guarantee == "at-least-once") so.guarantee = stream::Guarantee::kAtLeastOnce;
  else return usage("--guarantee must be exactly-once or at-least-once, not '" + guarantee + "'");
  auto format = stream::ParseMessageFormat(vm["format"].as<std::string>());
  if (!format.ok()) return usage(format.status().message());
  so.format = *format;
  so.model = {vm["model"].as<std::string>(), vm["model-version"].as<std::string>()};
  if (vm.count("columns")) {
    if (so.format == stream::MessageFormat::kV2Json) return usage("--columns applies to --format json or csv only");
    auto cols = stream::ParseColumns(SplitCommaList(vm["columns"].as<std::vector<std::string>>()));
    if (!cols.ok()) return usage(cols.status().message());
    so.columns = std::move(cols).value();
  }
  if (vm.count("map")) {
    if (so.format == stream::MessageFormat::kV2Json) return usage("--map applies to --format json or csv only");
    for (const auto& m : SplitCommaList(vm["map"].as<std::vector<std::string>>())) {
      auto mapping = batch::ParseColumnMapping(m);
      if (!mapping.ok()) return usage(mapping.status().message());
      so.map.push_back(std::move(mapping).value());
    }
  }
  so.batch_size = vm["batch-size"].as<int>();
  so.linger_ms = vm["linger-ms"].as<int>();
  so.commit_interval_ms = vm["commit-interval-ms"].as<int>();
  so.transaction_timeout_ms = vm["transaction-timeout-ms"].as<int>();
  so.statistics_interval_ms = vm["statistics-interval-ms"].as<int>();
  so.auto_offset_reset = vm["auto-offset-reset"].as<std::string>();
  if (so.auto_offset_reset != "earliest" && so.auto_offset_reset != "latest")
    return usage("--auto-offset-reset must be earliest or latest, not '" + so.auto_offset_reset + "'");
  if (vm.count("kafka")) {
    for (const auto& kv : vm["kafka"].as<std::vector<std::string>>()) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) return usage("--kafka entries are KEY=VALUE, not '" + kv + "'");
      so.kafka_config.push_back({kv.substr(0, eq), kv.substr(eq + 1)});
    }
  }

  server::ServerOptions options;
  if (Status s = ModelOptionsFromFlags(vm, &options.models); !s.ok()) return usage(s.message());
  if (!so.model.model.empty()) {
    // Only the stream's model is loaded; messages naming others (by header) get a
    // dead letter saying the model is unknown.
    options.models.mode = server::ControlMode::kExplicit;
    options.models.startup_models = {so.model.model};
  }
  options.response_cache_bytes = 0;

  BlockShutdownSignals();
  auto runtimes = RuntimesFromFlags(vm);
  if (!runtimes.ok()) {
    FERRY_LOG(kError, "cannot start a runtime", ("error", runtimes.status().message()));
    return 1;
  }
  auto server = server::Server::Create(std::move(options), std::move(runtimes).value());
  if (!server.ok()) return usage(server.status().message());
  if (Status s = (*server)->Start(); !s.ok()) {
    FERRY_LOG(kError, "cannot start the server", ("error", s.message()));
    return 1;
  }
  if (!so.model.model.empty()) {
    if (Status loaded = CheckModelLoaded(**server, so.model.model, so.model.version); !loaded.ok()) {
      std::cerr << "ferry stream: " << loaded.message() << "\n";
      (*server)->Shutdown();
      return 1;
    }
  }

  stream::StreamMetrics metrics;
  auto processor = stream::StreamProcessor::Create(**server, so, metrics);
  if (!processor.ok()) {
    (*server)->Shutdown();
    return usage(processor.status().message());
  }

  std::unique_ptr<frontend::http::HttpServer> metrics_http;
  if (vm["metrics-port"].as<uint16_t>() != 0) {
    frontend::http::HttpServerOptions m;
    m.address = vm["metrics-address"].as<std::string>();
    m.port = vm["metrics-port"].as<uint16_t>();
    m.threads = 1;
    m.max_body_bytes = 1 << 20;
    m.name = "metrics";
    server::Server* srv = server->get();
    auto created = frontend::http::HttpServer::Create(
        m, [srv, &metrics](frontend::http::Request&& req, frontend::http::Responder respond, frontend::http::ClientGone) {
          std::string_view target(req.target().data(), req.target().size());
          if (target.substr(0, target.find('?')) != "/metrics")
            return respond(frontend::http::JsonError(404, "Not Found"));
          frontend::http::Response r{frontend::http::beast_http::status::ok, 11};
          r.set(frontend::http::beast_http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
          r.body() = srv->metrics().Serialize() + metrics.Serialize();
          respond(std::move(r));
        });
    if (!created.ok()) return usage(created.status().message());
    metrics_http = std::move(created).value();
    if (Status s = metrics_http->Start(); !s.ok()) {
      FERRY_LOG(kError, "cannot start metrics endpoint", ("error", s.message()));
      (*server)->Shutdown();
      return 1;
    }
  }

  // The first signal stops the stream after it commits what it has; a second one ends
  // the process at once (the open transaction is then aborted by the broker, and its
  // messages are read again: nothing is lost).
  std::atomic<bool> stop{false};
  std::thread signals([&stop] {
    int sig = WaitForShutdownSignal();
    FERRY_LOG(kInfo, "stopping: committing the open transaction", ("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    stop.store(true);
    WaitForShutdownSignal();
    FERRY_LOG(kWarning, "second signal: exiting now", );
    std::_Exit(1);
  });
  signals.detach();

  Status run = (*processor)->Run(stop);
  processor->reset();
  if (metrics_http) metrics_http->Stop();
  (*server)->Shutdown();
  if (!run.ok()) {
    std::cerr << "ferry stream: " << run.message() << "\n";
    return 1;
  }
  FERRY_LOG(kInfo, "shutdown complete", );
  return 0;
}

}  // namespace ferry::cli
