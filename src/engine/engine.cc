#include "engine/engine.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/log.h"
#include "engine/child_process.h"
#include "engine/state_store.h"

namespace ferry::engine {
namespace fs = std::filesystem;
namespace {

// A stored deployment's YAML back into a one-deployment spec document.
std::string AsSpecDocument(const std::string& deployment_yaml) {
  std::string doc = "deployments:\n- ";
  for (char c : deployment_yaml) {
    doc += c;
    if (c == '\n') doc += "  ";
  }
  return doc + "\n";
}

// The engine's environment for its replicas: FERRY_* variables would configure every
// replica (FERRY_MODEL_REPOSITORY would even add a repository), so they stay here.
std::vector<std::string> ReplicaEnvironment() {
  std::vector<std::string> env;
  for (auto& e : CurrentEnvironment())
    if (e.rfind("FERRY_", 0) != 0) env.push_back(std::move(e));
  return env;
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Create(EngineOptions options) {
  if (options.state_dir.empty()) return InvalidArgument("--state-dir is required");
  FERRY_ASSIGN_OR_RETURN(auto store, StateStore::Open(options.state_dir));
  if (!options.config_path.empty()) {
    FERRY_ASSIGN_OR_RETURN(EngineSpec spec, LoadSpecFile(options.config_path));
    std::error_code ec;
    const std::string file = fs::absolute(options.config_path, ec).string();
    std::set<std::string> names;
    std::vector<DeploymentPut> puts;
    for (const auto& d : spec.deployments) {
      puts.push_back({d.name, d.source_yaml, file});
      names.insert(d.name);
    }
    FERRY_ASSIGN_OR_RETURN(auto stored, store->Deployments());
    std::vector<std::string> deletes;
    for (const auto& s : stored)
      if (!names.count(s.name)) deletes.push_back(s.name);
    FERRY_RETURN_IF_ERROR(store->WriteDeployments(puts, deletes).status());
  }
  FERRY_ASSIGN_OR_RETURN(auto stored, store->Deployments());
  if (stored.empty())
    FERRY_LOG(kInfo, "no deployment stored yet: deploy through the admin API (ferry deploy)", ("state", store->path()));
  std::vector<DeploymentInit> inits;
  for (const auto& s : stored) {
    DeploymentInit init;
    init.name = s.name;
    init.generation = s.generation;
    init.file = s.spec_file;
    init.pinned = s.pinned;
    if (!s.active_yaml.empty()) {
      auto active = ParseSpec(AsSpecDocument(s.active_yaml), s.active_file);
      if (active.ok() && active->deployments.size() == 1) {
        init.active = std::make_shared<const DeploymentSpec>(std::move(active->deployments[0]));
        init.active_generation = s.active_generation;
        init.active_file = s.active_file;
      } else if (!active.ok()) {
        FERRY_LOG(kWarning, "the last rolled-out spec of a deployment no longer validates; starting its newest",
                  ("deployment", s.name)("error", active.status().message()));
      }
    }
    auto desired = ParseSpec(AsSpecDocument(s.spec_yaml), s.spec_file);
    if (desired.ok() && desired->deployments.size() == 1) {
      init.desired = std::make_shared<const DeploymentSpec>(std::move(desired->deployments[0]));
    } else if (init.active) {
      FERRY_LOG(kError, "stored deployment no longer validates; its last rolled-out spec serves",
                ("deployment", s.name)("error", desired.status().message()));
      init.desired = init.active;
      init.generation = init.active_generation;
    } else {
      return InvalidArgument("stored deployment '" + s.name + "' no longer validates: " + desired.status().message());
    }
    inits.push_back(std::move(init));
  }
  return std::unique_ptr<Engine>(new Engine(std::move(options), std::move(store), std::move(inits)));
}

Engine::Engine(EngineOptions options, std::unique_ptr<StateStore> store, std::vector<DeploymentInit> deployments)
    : options_(std::move(options)), store_(std::move(store)), initial_(std::move(deployments)) {}

Engine::~Engine() { Stop(); }

Status Engine::Start() {
  SupervisorOptions sup;
  sup.binary = options_.binary;
  sup.state_dir = options_.state_dir;
  sup.base_env = ReplicaEnvironment();
  if (!options_.tracing.endpoint.empty()) {
    sup.inherited_serve_options["trace-endpoint"] = options_.tracing.endpoint;
    span_exporter_ = std::make_unique<monitoring::SpanExporter>(
        options_.tracing, [this](const char* result, uint64_t n) { metrics_.TraceSpans(result, n); });
    span_exporter_->Start();
    FERRY_LOG(kInfo, "tracing", ("endpoint", options_.tracing.endpoint)("sample_rate", options_.trace_sample_rate));
  }
  const GatewayTracing tracing{span_exporter_.get(), options_.trace_sample_rate};
  HttpGatewayOptions http_options = options_.gateway;
  http_options.tracing = tracing;
  GrpcGatewayOptions grpc_options = options_.grpc_gateway;
  grpc_options.tracing = tracing;
  supervisor_ = std::make_unique<Supervisor>(sup, store_.get(), SystemClock::Get());
  controller_ = std::make_unique<DeploymentController>(supervisor_.get(), store_.get(), &metrics_, SystemClock::Get(),
                                                       options_.state_dir);
  FERRY_RETURN_IF_ERROR(controller_->Init(std::move(initial_)));
  PublishRoutes();
  FERRY_ASSIGN_OR_RETURN(gateway_, HttpGateway::Create(http_options, &router_));
  FERRY_RETURN_IF_ERROR(gateway_->Start());
  if (options_.grpc_gateway.port != 0) {
    FERRY_ASSIGN_OR_RETURN(grpc_gateway_, GrpcGateway::Create(grpc_options, &router_));
    FERRY_RETURN_IF_ERROR(grpc_gateway_->Start());
  }
  if (options_.metrics_port != 0) {
    // Read on every scrape and every alert evaluation (two threads; each read is
    // thread-safe): gauges of the gateway's counters and the supervisor's report.
    metrics_.SetCollectHook([this] {
      // Held for the loop: in `for (d : router_.Snapshot()->deployments)` the snapshot is a
      // temporary, freed before the first iteration whenever the control thread has
      // published a newer table meanwhile (a heap-use-after-free ASan caught).
      const auto table = router_.Snapshot();
      for (const auto& d : table->deployments)
        metrics_.SetDeploymentLoad(d->name, d->load->in_flight, d->load->waiting, d->load->limiter.queued());
      // A revision may run as two instances (old and new settings) during a rolling update.
      std::map<std::pair<std::string, std::string>, RevisionStatus> sum;
      for (const auto& r : supervisor_->StatusReport()) {
        auto& s = sum[{r.deployment, r.revision}];
        s.desired += r.desired;
        s.ready += r.ready;
        s.degraded = s.degraded || r.degraded;
        s.restarts_total += r.restarts_total;
      }
      for (const auto& [k, r] : sum) metrics_.SetRevision(k.first, k.second, r.desired, r.ready, r.degraded, r.restarts_total);
    });
    frontend::http::HttpServerOptions m;
    m.address = options_.gateway.address;
    m.port = options_.metrics_port;
    m.threads = 1;
    m.max_body_bytes = 1 << 20;
    m.name = "engine-metrics";
    FERRY_ASSIGN_OR_RETURN(metrics_http_,
                           frontend::http::HttpServer::Create(
                               m, [this](frontend::http::Request&& req, frontend::http::Responder respond,
                                         frontend::http::ClientGone) {
                                 std::string_view target(req.target().data(), req.target().size());
                                 if (target.substr(0, target.find('?')) != "/metrics")
                                   return respond(frontend::http::JsonError(404, "Not Found"));
                                 frontend::http::Response r{boost::beast::http::status::ok, 11};
                                 r.set(boost::beast::http::field::content_type,
                                       "text/plain; version=0.0.4; charset=utf-8");
                                 r.body() = metrics_.Serialize();
                                 respond(std::move(r));
                               }));
    FERRY_RETURN_IF_ERROR(metrics_http_->Start());
  }
  if (options_.admin.port != 0) {
    FERRY_ASSIGN_OR_RETURN(admin_, AdminApi::Create(options_.admin, &backend_, store_.get()));
    FERRY_RETURN_IF_ERROR(admin_->Start());
  }
  control_ = std::thread([this] { ControlLoop(); });
  return Status::Ok();
}

void Engine::Stop() {
  if (!control_.joinable()) return;
  {
    // Changes asked for from now on are refused; queued ones are answered by the control
    // thread before it stops.
    std::lock_guard lock(commands_mu_);
    accepting_ = false;
  }
  // Both read the supervisor, which the control thread ends with.
  if (metrics_http_) metrics_http_->Stop(1000);
  if (admin_) admin_->Stop();
  // Clients first: requests in flight finish while every replica still runs; both
  // gateways drain at once.
  std::thread grpc_stop;
  if (grpc_gateway_) grpc_stop = std::thread([this] { grpc_gateway_->Stop(10000); });
  if (gateway_) gateway_->Stop(10000);
  if (grpc_stop.joinable()) grpc_stop.join();
  if (span_exporter_) span_exporter_->Stop();  // exports the gateways' spans still queued
  stop_ = true;
  commands_cv_.notify_all();
  control_.join();
}

void Engine::Backend::Submit(AdminCommand command, std::function<void(Result<std::string>)> done) {
  {
    std::lock_guard lock(engine_->commands_mu_);
    if (engine_->accepting_) {
      engine_->commands_.push_back({std::move(command), std::move(done)});
      engine_->commands_cv_.notify_all();
      return;
    }
  }
  done(Unavailable("the engine is stopping"));
}

std::optional<std::string> Engine::Backend::DeploymentJson(const std::string& name) {
  return engine_->controller_->DeploymentJson(name, engine_->supervisor_->StatusReport());
}

Result<LogTarget> Engine::Backend::ResolveLogs(const std::string& name, const std::optional<std::string>& revision,
                                               std::optional<int> replica) {
  return engine_->controller_->ResolveLogs(name, revision, replica, engine_->supervisor_->StatusReport());
}

void Engine::RunCommands() {
  std::deque<PendingCommand> batch;
  {
    std::lock_guard lock(commands_mu_);
    batch.swap(commands_);
  }
  for (auto& p : batch) {
    Result<std::string> r = stop_ ? Result<std::string>(Unavailable("the engine is stopping"))
                                  : AdminApi::Execute(std::move(p.command), *controller_);
    // Routed and in the status file before it is acknowledged.
    PublishRoutes();
    WriteStatusFile();
    p.done(std::move(r));
  }
}

void Engine::ControlLoop() {
  uint64_t last_status = 0;
  while (!stop_) {
    const uint64_t t0 = NowNanos();
    RunCommands();
    bool changed = controller_->Tick();
    if (changed) PublishRoutes();
    if (supervisor_->Tick()) {
      changed = true;
      PublishRoutes();
    } else {
      // Replicas may have become routable or left without a new table.
      ConfigureLimiters(*router_.Snapshot());
    }
    // The status file is for people and tests: on every change, and once a second for
    // the in-flight counts.
    if (changed || NowNanos() - last_status > 1'000'000'000) {
      WriteStatusFile();
      last_status = NowNanos();
    }
    const uint64_t spent = NowNanos() - t0;
    const uint64_t period = static_cast<uint64_t>(options_.tick.count()) * 1'000'000;
    if (spent < period) {
      // An admin command wakes the loop at once.
      std::unique_lock lock(commands_mu_);
      commands_cv_.wait_for(lock, std::chrono::nanoseconds(period - spent),
                            [this] { return stop_.load() || !commands_.empty(); });
    }
  }
  RunCommands();  // answers what is still queued: the engine is stopping
  supervisor_->StopAll(controller_->LongestDrain() + Millis(1000));
  PublishRoutes();
  WriteStatusFile();
  // The replicas' pools must close on this side of the gateway's loops: they are stopped.
  controller_.reset();
  supervisor_.reset();
}

void Engine::PublishRoutes() {
  std::shared_ptr<const RouteTable> table = controller_->Routes();
  router_.Publish(table);
  ConfigureLimiters(*table);
  if (grpc_gateway_) grpc_gateway_->RefreshHealth();
}

void Engine::ConfigureLimiters(const RouteTable& table) {
  for (const auto& d : table.deployments) ConfigureLimiter(*d);
}

std::string Engine::StatusJson() const {
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("pid");
  w.Int64(::getpid());
  w.Key("gateway_port");
  w.Uint(gateway_ ? gateway_->port() : 0);
  w.Key("metrics_port");
  w.Uint(metrics_port());
  controller_->WriteStatus(w, supervisor_->StatusReport());
  if (gateway_) {
    auto c = gateway_->counters();
    w.Key("gateway");
    w.StartObject();
    w.Key("requests");
    w.Uint64(c.requests);
    w.Key("retries");
    w.Uint64(c.retries);
    w.Key("upstream_errors");
    w.Uint64(c.upstream_errors);
    w.EndObject();
  }
  if (grpc_gateway_) {
    auto c = grpc_gateway_->counters();
    w.Key("grpc_gateway");
    w.StartObject();
    w.Key("port");
    w.Uint(grpc_gateway_->port());
    w.Key("requests");
    w.Uint64(c.requests);
    w.Key("retries");
    w.Uint64(c.retries);
    w.Key("upstream_errors");
    w.Uint64(c.upstream_errors);
    w.EndObject();
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void Engine::WriteStatusFile() {
  const std::string json = StatusJson();
  // Written aside and renamed, so a reader never sees half a file.
  const fs::path path = fs::path(options_.state_dir) / "status.json";
  const fs::path tmp = fs::path(options_.state_dir) / "status.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json << "\n";
    if (!out) return;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
}

}  // namespace ferry::engine
