#include "engine/engine.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/log.h"
#include "engine/child_process.h"

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
  EngineSpec spec;
  if (!options.config_path.empty()) {
    FERRY_ASSIGN_OR_RETURN(spec, LoadSpecFile(options.config_path));
    std::error_code ec;
    const std::string file = fs::absolute(options.config_path, ec).string();
    std::set<std::string> names;
    for (const auto& d : spec.deployments) {
      FERRY_RETURN_IF_ERROR(store->PutDeployment(d.name, d.source_yaml, file));
      names.insert(d.name);
    }
    FERRY_ASSIGN_OR_RETURN(auto stored, store->Deployments());
    for (const auto& s : stored)
      if (!names.count(s.name)) FERRY_RETURN_IF_ERROR(store->DeleteDeployment(s.name));
  } else {
    FERRY_ASSIGN_OR_RETURN(auto stored, store->Deployments());
    if (stored.empty())
      return FailedPrecondition("no --config given and no deployment stored in '" + store->path() + "'");
    for (const auto& s : stored) {
      auto one = ParseSpec(AsSpecDocument(s.spec_yaml), s.spec_file);
      if (!one.ok())
        return InvalidArgument("stored deployment '" + s.name + "' no longer validates: " + one.status().message());
      for (auto& d : one->deployments) spec.deployments.push_back(std::move(d));
    }
  }
  return std::unique_ptr<Engine>(new Engine(std::move(options), std::move(store), std::move(spec)));
}

Engine::Engine(EngineOptions options, std::unique_ptr<StateStore> store, EngineSpec spec)
    : options_(std::move(options)), store_(std::move(store)) {
  for (auto& d : spec.deployments) {
    loads_[d.name] = std::make_shared<DeploymentLoad>();
    deployments_.push_back(std::make_shared<const DeploymentSpec>(std::move(d)));
  }
}

Engine::~Engine() { Stop(); }

Status Engine::Start() {
  SupervisorOptions sup;
  sup.binary = options_.binary;
  sup.state_dir = options_.state_dir;
  sup.base_env = ReplicaEnvironment();
  supervisor_ = std::make_unique<Supervisor>(sup, store_.get(), SystemClock::Get());
  for (const auto& d : deployments_) {
    for (const auto& r : d->revisions) {
      FERRY_RETURN_IF_ERROR(supervisor_->AddRevision(d, r.name, d->replicas.initial));
      scaled_.push_back({d, r.name, std::make_unique<Autoscaler>(d->autoscaling, d->replicas, SystemClock::Get()), 0});
      FERRY_LOG(kInfo, "deployment revision", ("deployment", d->name)("revision", r.name)
                                                  ("replicas", d->replicas.initial)("models", r.model_names.size()));
    }
  }
  PublishRoutes();
  FERRY_ASSIGN_OR_RETURN(gateway_, HttpGateway::Create(options_.gateway, &router_));
  FERRY_RETURN_IF_ERROR(gateway_->Start());
  if (options_.grpc_gateway.port != 0) {
    FERRY_ASSIGN_OR_RETURN(grpc_gateway_, GrpcGateway::Create(options_.grpc_gateway, &router_));
    FERRY_RETURN_IF_ERROR(grpc_gateway_->Start());
  }
  if (options_.metrics_port != 0) {
    // Read on every scrape: gauges of the gateway's counters and the supervisor's report
    // (thread-safe); scrapes are serialised by the endpoint's single loop.
    metrics_.SetCollectHook([this] {
      for (const auto& [name, load] : loads_) metrics_.SetDeploymentLoad(name, load->in_flight, load->waiting);
      for (const auto& r : supervisor_->StatusReport())
        metrics_.SetRevision(r.deployment, r.revision, r.desired, r.ready, r.degraded, r.restarts_total);
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
    FERRY_ASSIGN_OR_RETURN(admin_, AdminApi::Create(options_.admin, [this] { return StatusJson(); }, store_.get()));
    FERRY_RETURN_IF_ERROR(admin_->Start());
  }
  control_ = std::thread([this] { ControlLoop(); });
  return Status::Ok();
}

void Engine::Stop() {
  if (!control_.joinable()) return;
  // Both read the supervisor, which the control thread ends with.
  if (metrics_http_) metrics_http_->Stop(1000);
  if (admin_) admin_->Stop();
  // Clients first: requests in flight finish while every replica still runs; both
  // gateways drain at once.
  std::thread grpc_stop;
  if (grpc_gateway_) grpc_stop = std::thread([this] { grpc_gateway_->Stop(10000); });
  if (gateway_) gateway_->Stop(10000);
  if (grpc_stop.joinable()) grpc_stop.join();
  stop_ = true;
  control_.join();
}

void Engine::ControlLoop() {
  uint64_t last_status = 0;
  while (!stop_) {
    const uint64_t t0 = NowNanos();
    for (auto& s : scaled_) {
      auto load = supervisor_->Load(s.deployment->name, s.revision);
      const uint64_t arrivals = load ? load->arrivals.load() : 0;
      // Requests held at the gateway for want of a replica count for every revision with
      // traffic: that is what wakes a revision scaled to zero.
      auto w = s.deployment->traffic.find(s.revision);
      const int waiting = w != s.deployment->traffic.end() && w->second > 0 ? loads_.at(s.deployment->name)->waiting.load() : 0;
      LatencyHistogram::Counts latency{};
      if (load) {
        const LatencyHistogram::Counts now = load->latency.Read();
        for (int i = 0; i < LatencyHistogram::kBuckets; ++i) latency[i] = now[i] - s.last_latency[i];
        s.last_latency = now;
      }
      s.autoscaler->Observe(supervisor_->InFlight(s.deployment->name, s.revision) + waiting, arrivals - s.last_arrivals,
                            &latency);
      s.last_arrivals = arrivals;
      const int current = supervisor_->Desired(s.deployment->name, s.revision);
      ScaleDecision d = s.autoscaler->Decide(current, supervisor_->ReadyCount(s.deployment->name, s.revision));
      if (d.desired != current) {
        FERRY_LOG(kInfo, "scaling", ("deployment", s.deployment->name)("revision", s.revision)("from", current)
                                        ("to", d.desired)("reason", d.reason));
        Status st = store_->RecordScaleEvent({0, s.deployment->name, s.revision, current, d.desired, d.reason});
        if (!st.ok()) FERRY_LOG(kWarning, "cannot record a scale event", ("error", st.message()));
        supervisor_->SetDesired(s.deployment->name, s.revision, d.desired);
        metrics_.ScaleEvent(s.deployment->name, s.revision);
      }
    }
    const bool changed = supervisor_->Tick();
    if (changed) PublishRoutes();
    // The status file is for people and tests until the admin API exists: on every
    // change, and once a second for the in-flight counts.
    if (changed || NowNanos() - last_status > 1'000'000'000) {
      WriteStatusFile();
      last_status = NowNanos();
    }
    const uint64_t spent = NowNanos() - t0;
    const uint64_t period = static_cast<uint64_t>(options_.tick.count()) * 1'000'000;
    if (spent < period) std::this_thread::sleep_for(std::chrono::nanoseconds(period - spent));
  }
  Millis longest{0};
  for (const auto& d : deployments_) longest = std::max(longest, d->drain.grace + d->drain.kill_after);
  supervisor_->StopAll(longest + Millis(1000));
  PublishRoutes();
  WriteStatusFile();
  // The replicas' pools must close on this side of the gateway's loops: they are stopped.
  supervisor_.reset();
}

void Engine::PublishRoutes() {
  auto table = std::make_shared<RouteTable>();
  for (const auto& d : deployments_) {
    auto route = std::make_shared<DeploymentRoute>();
    route->name = d->name;
    route->min_replicas = d->replicas.min;
    route->max_in_flight = d->gateway.max_in_flight;
    route->request_timeout_ms = d->gateway.request_timeout.count();
    route->cold_start_timeout_ms = d->gateway.cold_start_timeout.count();
    route->load = loads_.at(d->name);
    route->metrics = metrics_.ForDeployment(d->name);
    for (const auto& r : d->revisions) {
      RevisionRoute rr;
      rr.name = r.name;
      auto w = d->traffic.find(r.name);
      rr.weight = w == d->traffic.end() ? 0 : w->second;
      if (supervisor_) {
        rr.replicas = supervisor_->Endpoints(d->name, r.name);
        rr.load = supervisor_->Load(d->name, r.name);
      }
      if (!rr.load) rr.load = std::make_shared<RevisionLoad>();
      route->revisions.push_back(std::move(rr));
    }
    for (const auto& r : d->revisions)
      for (const auto& m : r.model_names) table->by_model[m] = route;
    table->deployments.push_back(route);
  }
  router_.Publish(std::move(table));
  if (grpc_gateway_) grpc_gateway_->RefreshHealth();
}

std::string Engine::StatusJson() const {
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("pid");
  w.Int64(::getpid());
  w.Key("gateway_port");
  w.Uint(gateway_ ? gateway_->port() : 0);
  w.Key("revisions");
  w.StartArray();
  for (const auto& rev : supervisor_->StatusReport()) {
    w.StartObject();
    w.Key("deployment");
    w.String(rev.deployment.c_str());
    w.Key("revision");
    w.String(rev.revision.c_str());
    w.Key("desired");
    w.Int(rev.desired);
    w.Key("ready");
    w.Int(rev.ready);
    w.Key("degraded");
    w.Bool(rev.degraded);
    w.Key("degraded_reason");
    w.String(rev.degraded_reason.c_str());
    w.Key("replicas");
    w.StartArray();
    for (const auto& r : rev.replicas) {
      w.StartObject();
      w.Key("index");
      w.Int(r.index);
      w.Key("pid");
      w.Int64(r.pid);
      w.Key("port");
      w.Uint(r.http_port);
      w.Key("grpc_port");
      w.Uint(r.grpc_port);
      w.Key("state");
      w.String(std::string(ReplicaStateName(r.state)).c_str());
      w.Key("in_flight");
      w.Int(r.outstanding);
      w.Key("restarts");
      w.Int(r.restarts);
      w.Key("log");
      w.String(r.log_path.c_str());
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
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
