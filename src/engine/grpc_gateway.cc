#include "engine/grpc_gateway.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/cpu.h"
#include "core/log.h"
#include "engine/grpc_forward.h"
#include "frontend/grpc/health_service.h"
#include "frontend/grpc/reflection_service.h"
#include "protocol/grpc/grpc_service.grpc.pb.h"

namespace ferry::engine {
namespace g = ::grpc;
using inference::GRPCInferenceService;

namespace {

// Calls each queue keeps armed for new requests (as `ferry serve`'s ModelInfer pollers).
constexpr int kArmedPerQueue = 16;

using G = GRPCInferenceService;
// The forwarded methods are generic: they reach the AsyncGenericService as bytes. The
// others are answered here, on the callback API.
using GatewayService =
    G::WithCallbackMethod_ServerLive<
    G::WithCallbackMethod_ServerReady<
    G::WithCallbackMethod_ServerMetadata<
    G::WithCallbackMethod_RepositoryIndex<
    G::WithCallbackMethod_RepositoryModelLoad<
    G::WithCallbackMethod_RepositoryModelUnload<
    G::WithCallbackMethod_SystemSharedMemoryStatus<
    G::WithCallbackMethod_SystemSharedMemoryRegister<
    G::WithCallbackMethod_SystemSharedMemoryUnregister<
    G::WithCallbackMethod_CudaSharedMemoryStatus<
    G::WithCallbackMethod_CudaSharedMemoryRegister<
    G::WithCallbackMethod_CudaSharedMemoryUnregister<
    G::WithCallbackMethod_TraceSetting<
    G::WithCallbackMethod_LogSettings<
    G::WithGenericMethod_ModelInfer<
    G::WithGenericMethod_ModelStreamInfer<
    G::WithGenericMethod_ModelMetadata<
    G::WithGenericMethod_ModelReady<
    G::WithGenericMethod_ModelConfig<
    G::WithGenericMethod_ModelStatistics<G::Service>
    >>>>>>>>>>>>>>>>>>>;

g::ServerUnaryReactor* Done(g::CallbackServerContext* ctx, const g::Status& s) {
  g::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(s);
  return r;
}

g::ServerUnaryReactor* NotHere(g::CallbackServerContext* ctx, const char* what) {
  return Done(ctx, g::Status(g::StatusCode::UNIMPLEMENTED, std::string(what) + " is not supported by the ferry engine gateway"));
}

// The methods the gateway answers itself, from the route table (as the REST gateway's
// /v2/health/*, GET /v2 and /v2/repository/index).
class SelfAnswered final : public GatewayService {
 public:
  SelfAnswered(Router* router, std::string version) : router_(router), version_(std::move(version)) {}

  g::ServerUnaryReactor* ServerLive(g::CallbackServerContext* ctx, const inference::ServerLiveRequest*,
                                    inference::ServerLiveResponse* resp) override {
    resp->set_live(true);
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* ServerReady(g::CallbackServerContext* ctx, const inference::ServerReadyRequest*,
                                     inference::ServerReadyResponse* resp) override {
    resp->set_ready(GatewayReady(*router_->Snapshot()));
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* ServerMetadata(g::CallbackServerContext* ctx, const inference::ServerMetadataRequest*,
                                        inference::ServerMetadataResponse* resp) override {
    resp->set_name("ferry-engine");
    resp->set_version(version_);
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* RepositoryIndex(g::CallbackServerContext* ctx, const inference::RepositoryIndexRequest* req,
                                         inference::RepositoryIndexResponse* resp) override {
    auto table = router_->Snapshot();
    std::vector<std::pair<std::string, bool>> models;
    for (const auto& [name, d] : table->by_model) models.emplace_back(name, HasRoutableReplica(*d));
    std::sort(models.begin(), models.end());
    for (const auto& [name, ready] : models) {
      if (req->ready() && !ready) continue;
      auto* m = resp->add_models();
      m->set_name(name);
      m->set_state(ready ? "READY" : "UNAVAILABLE");
      if (!ready) m->set_reason("no ready replica");
    }
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* RepositoryModelLoad(g::CallbackServerContext* ctx,
                                             const inference::RepositoryModelLoadRequest* req,
                                             inference::RepositoryModelLoadResponse*) override {
    return Done(ctx, EngineOwnsModels("load", req->model_name()));
  }

  g::ServerUnaryReactor* RepositoryModelUnload(g::CallbackServerContext* ctx,
                                               const inference::RepositoryModelUnloadRequest* req,
                                               inference::RepositoryModelUnloadResponse*) override {
    return Done(ctx, EngineOwnsModels("unload", req->model_name()));
  }

  g::ServerUnaryReactor* SystemSharedMemoryStatus(g::CallbackServerContext* ctx,
                                                  const inference::SystemSharedMemoryStatusRequest*,
                                                  inference::SystemSharedMemoryStatusResponse*) override {
    return NotHere(ctx, "system shared memory");
  }
  g::ServerUnaryReactor* SystemSharedMemoryRegister(g::CallbackServerContext* ctx,
                                                    const inference::SystemSharedMemoryRegisterRequest*,
                                                    inference::SystemSharedMemoryRegisterResponse*) override {
    return NotHere(ctx, "system shared memory");
  }
  g::ServerUnaryReactor* SystemSharedMemoryUnregister(g::CallbackServerContext* ctx,
                                                      const inference::SystemSharedMemoryUnregisterRequest*,
                                                      inference::SystemSharedMemoryUnregisterResponse*) override {
    return NotHere(ctx, "system shared memory");
  }
  g::ServerUnaryReactor* CudaSharedMemoryStatus(g::CallbackServerContext* ctx,
                                                const inference::CudaSharedMemoryStatusRequest*,
                                                inference::CudaSharedMemoryStatusResponse*) override {
    return NotHere(ctx, "CUDA shared memory");
  }
  g::ServerUnaryReactor* CudaSharedMemoryRegister(g::CallbackServerContext* ctx,
                                                  const inference::CudaSharedMemoryRegisterRequest*,
                                                  inference::CudaSharedMemoryRegisterResponse*) override {
    return NotHere(ctx, "CUDA shared memory");
  }
  g::ServerUnaryReactor* CudaSharedMemoryUnregister(g::CallbackServerContext* ctx,
                                                    const inference::CudaSharedMemoryUnregisterRequest*,
                                                    inference::CudaSharedMemoryUnregisterResponse*) override {
    return NotHere(ctx, "CUDA shared memory");
  }
  g::ServerUnaryReactor* TraceSetting(g::CallbackServerContext* ctx, const inference::TraceSettingRequest*,
                                      inference::TraceSettingResponse*) override {
    return NotHere(ctx, "TraceSetting (tracing)");
  }
  g::ServerUnaryReactor* LogSettings(g::CallbackServerContext* ctx, const inference::LogSettingsRequest*,
                                     inference::LogSettingsResponse*) override {
    return NotHere(ctx, "LogSettings");
  }

 private:
  static g::Status EngineOwnsModels(const char* what, const std::string& model) {
    return g::Status(g::StatusCode::FAILED_PRECONDITION,
                     std::string("cannot ") + what + " model '" + model +
                         "' through the engine gateway: the engine runs the models of its deployment spec; "
                         "change the spec (ferry engine --config) instead");
  }

  Router* router_;
  const std::string version_;
};

}  // namespace

struct GrpcGateway::Impl {
  GrpcGatewayOptions options;
  Router* router = nullptr;
  grpc_forward::ForwardCore core;
  std::unique_ptr<SelfAnswered> service;
  frontend::grpc::HealthService health;
  frontend::grpc::ReflectionService reflection{{GRPCInferenceService::service_full_name(), "grpc.health.v1.Health",
                                                "grpc.reflection.v1alpha.ServerReflection"}};
  frontend::grpc::LiveCalls live;  // the health and reflection calls on the queues
  std::unique_ptr<g::Server> server;
  std::vector<std::unique_ptr<g::ServerCompletionQueue>> queues;
  std::vector<std::thread> threads;
  int port = 0;
  std::mutex health_mu;
  std::set<std::string> health_models;  // guarded by health_mu: the model names set last
};

GrpcGateway::GrpcGateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcGateway::~GrpcGateway() { Stop(0); }

Result<std::unique_ptr<GrpcGateway>> GrpcGateway::Create(GrpcGatewayOptions options, Router* router) {
  if (options.threads <= 0) options.threads = AvailableCores();
  if (options.max_message_bytes <= 0) return InvalidArgument("the gRPC gateway's largest message must be positive");
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->router = router;
  impl->core.router = router;
  impl->core.tracing = impl->options.tracing;
  // Upstream: no message size limit of its own (each replica applies `ferry serve`'s), and
  // a quick reconnect to a replica that was not listening yet.
  g::ChannelArguments& args = impl->core.upstream_args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return std::unique_ptr<GrpcGateway>(new GrpcGateway(std::move(impl)));
}

Status GrpcGateway::Start() {
  Impl& s = *impl_;
  // As in `ferry serve`: Debian's abseil runs mutex deadlock detection, cycle graphs on
  // every lock of gRPC's; 7% of the gateway's CPU in a profile.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  s.service = std::make_unique<SelfAnswered>(s.router, s.options.version);
  g::ServerBuilder builder;
  const std::string addr = s.options.address + ":" + std::to_string(s.options.port);
  builder.AddListeningPort(addr, g::InsecureServerCredentials(), &s.port);
  builder.RegisterService(s.service.get());
  builder.RegisterService(s.health.service());
  builder.RegisterService(s.reflection.service());
  builder.RegisterAsyncGenericService(&s.core.generic);
  builder.SetMaxReceiveMessageSize(s.options.max_message_bytes);
  builder.SetMaxSendMessageSize(s.options.max_message_bytes);
  for (int i = 0; i < s.options.threads; ++i) s.queues.push_back(builder.AddCompletionQueue());
  s.server = builder.BuildAndStart();
  if (!s.server || s.port == 0) {
    s.server.reset();
    for (auto& q : s.queues) {
      q->Shutdown();
      frontend::grpc::PollQueue(q.get());
    }
    s.queues.clear();
    return Unavailable("grpc gateway: cannot listen on " + addr);
  }
  for (auto& q : s.queues) {
    for (int i = 0; i < kArmedPerQueue; ++i) grpc_forward::AcceptOn(&s.core, q.get());
    s.health.Arm(q.get(), &s.live);
    s.reflection.Arm(q.get(), &s.live);
    s.threads.emplace_back([cq = q.get()] { frontend::grpc::PollQueue(cq); });
  }
  RefreshHealth();
  FERRY_LOG(kInfo, "listening", ("server", "gateway-grpc")("address", s.options.address)("port", s.port)
                                    ("threads", s.options.threads));
  return Status::Ok();
}

uint16_t GrpcGateway::port() const { return static_cast<uint16_t>(impl_->port); }

void GrpcGateway::Stop(int grace_ms) {
  Impl& s = *impl_;
  if (!s.server) return;
  s.health.Shutdown();
  // Refuses new calls; the ones in flight get grace_ms, then are cancelled. The queue
  // threads keep running meanwhile: they carry those calls to their end.
  s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  // A cancelled call still has its upstream call and timers to wind down, on its queue;
  // no new operation may start on a queue once it is shut down.
  while (s.core.calls.load(std::memory_order_acquire) > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.live.WaitForNone();
  for (auto& q : s.queues) q->Shutdown();
  for (auto& t : s.threads) t.join();
  s.server->Wait();
  s.threads.clear();
  s.queues.clear();
  s.server.reset();
}

void GrpcGateway::RefreshHealth() {
  Impl& s = *impl_;
  auto table = s.router->Snapshot();
  const bool ready = GatewayReady(*table);
  s.health.Set("", ready);
  s.health.Set(GRPCInferenceService::service_full_name(), ready);
  std::set<std::string> now;
  for (const auto& [name, d] : table->by_model) {
    s.health.Set(name, HasRoutableReplica(*d));
    now.insert(name);
  }
  std::lock_guard lock(s.health_mu);
  for (const auto& old : s.health_models)
    if (!now.count(old)) s.health.Set(old, false);
  s.health_models = std::move(now);
}

GrpcGateway::Counters GrpcGateway::counters() const {
  const auto& c = impl_->core;
  return {c.requests.load(), c.retries.load(), c.upstream_errors.load()};
}

}  // namespace ferry::engine
