#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/result.h"
#include "engine/admin_api.h"
#include "engine/autoscaler.h"
#include "engine/deployment_controller.h"
#include "engine/engine_metrics.h"
#include "frontend/http/http_server.h"
#include "engine/grpc_gateway.h"
#include "engine/http_gateway.h"
#include "engine/router.h"
#include "engine/spec.h"
#include "engine/state_store.h"
#include "engine/supervisor.h"
#include "monitoring/span_exporter.h"

namespace ferry::engine {

struct EngineOptions {
  std::string state_dir;    // required: engine.db, logs/, revisions/, status.json
  std::string config_path;  // a spec file; empty: run the deployments stored in state_dir
  HttpGatewayOptions gateway;
  GrpcGatewayOptions grpc_gateway;  // port 0 disables
  uint16_t metrics_port = 8092;  // Prometheus metrics on the gateway's address; 0 disables
  AdminApiOptions admin;         // port 0 disables
  std::chrono::milliseconds tick{100};  // control loop period (autoscaler sampling, probes)
  std::string binary = "/proc/self/exe";
  // OpenTelemetry: the gateways' spans go to tracing.endpoint (empty: tracing off), and
  // replicas export theirs there too unless their revision's serve options say otherwise.
  monitoring::SpanExporterOptions tracing;
  double trace_sample_rate = 0.01;  // requests without a traceparent
};

// `ferry engine`: the deployments of a spec, run as supervised `ferry serve` replicas
// behind the REST and gRPC gateways, autoscaled, with their state in SQLite.
// Threads: the caller's (Create, Start, Stop); the metrics and admin endpoints' loops; the control thread (supervisor, autoscalers,
// route table, status file: every replica is launched from it, so their PR_SET_PDEATHSIG
// follows it); the gateway's HTTP loops; the gRPC gateway's queue threads; the
// supervisor's log pump.
// With a config file, the file is the desired state: stored deployments it lacks are
// deleted from the store. Without one, the stored deployments come back (an engine restart,
// after kill -9 too). Either way each deployment's last completely rolled-out spec starts,
// then a newer desired one (a changed file) rolls out as a live update would
// (DeploymentController). Replicas are never re-adopted: a dead engine's replicas died
// with it (PDEATHSIG), so a restarted engine starts fresh ones.
// Changes through the admin API are queued to the control thread, which applies them one
// at a time between ticks.
// Thread-safety: Create, Start and Stop are called by one owner thread.
class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(EngineOptions options);
  ~Engine();

  Status Start();
  // Stops the gateways (requests in flight finish), then drains and stops every replica.
  void Stop();
  uint16_t gateway_port() const { return gateway_->port(); }
  uint16_t grpc_port() const { return grpc_gateway_ ? grpc_gateway_->port() : 0; }
  // The engine's metrics in the Prometheus text format (what GET /metrics answers);
  // thread-safe.
  std::string MetricsText() { return metrics_.Serialize(); }
  uint16_t metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }
  // The engine's registry, for metric families others own (ferry's own alerting).
  prometheus::Registry* metrics_registry() { return metrics_.registry(); }
  uint16_t admin_port() const { return admin_ ? admin_->port() : 0; }

 private:
  // The admin API's view of the engine.
  class Backend : public AdminBackend {
   public:
    explicit Backend(Engine* engine) : engine_(engine) {}
    std::string StatusJson() override { return engine_->StatusJson(); }
    std::optional<std::string> DeploymentJson(const std::string& name) override;
    Result<LogTarget> ResolveLogs(const std::string& name, const std::optional<std::string>& revision,
                                  std::optional<int> replica) override;
    void Submit(AdminCommand command, std::function<void(Result<std::string>)> done) override;

   private:
    Engine* engine_;
  };
  struct PendingCommand {
    AdminCommand command;
    std::function<void(Result<std::string>)> done;
  };
  Engine(EngineOptions options, std::unique_ptr<StateStore> store, std::vector<DeploymentInit> deployments);
  void ControlLoop();
  // Applies the queued admin commands (control thread).
  void RunCommands();
  void PublishRoutes();
  // Sizes every deployment's concurrency limiter to its routable replicas.
  static void ConfigureLimiters(const RouteTable& table);
  void WriteStatusFile();
  // Every deployment, revision instance and replica as JSON (status.json, GET /v1/status).
  // Thread-safe while the control thread runs.
  std::string StatusJson() const;

  const EngineOptions options_;
  std::unique_ptr<StateStore> store_;
  std::vector<DeploymentInit> initial_;  // until Start
  Router router_;
  std::unique_ptr<Supervisor> supervisor_;  // control thread only, once started
  std::unique_ptr<DeploymentController> controller_;  // control thread only, but its thread-safe reads
  Backend backend_{this};
  std::mutex commands_mu_;
  std::condition_variable commands_cv_;
  std::deque<PendingCommand> commands_;  // guarded by commands_mu_
  bool accepting_ = true;                // guarded by commands_mu_
  EngineMetrics metrics_;
  std::unique_ptr<monitoring::SpanExporter> span_exporter_;  // null without tracing
  std::unique_ptr<HttpGateway> gateway_;
  std::unique_ptr<GrpcGateway> grpc_gateway_;  // null when disabled
  std::unique_ptr<frontend::http::HttpServer> metrics_http_;
  std::unique_ptr<AdminApi> admin_;
  std::thread control_;
  std::atomic<bool> stop_{false};
};

}  // namespace ferry::engine
