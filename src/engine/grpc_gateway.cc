#include "engine/grpc_gateway.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/cpu.h"
#include "core/log.h"
#include "engine/grpc_forward.h"
#include "engine/native_forward.h"
#include "frontend/grpc/health_service.h"
#include "frontend/grpc/reflection_service.h"
#include "frontend/grpc/unary_call.h"
#include "frontend/grpc_native/native_listener.h"
#include "frontend/grpc_native/native_services.h"
#include "frontend/grpc_native/native_unary.h"
#include "protocol/grpc/grpc_service.grpc.pb.h"

namespace ferry::engine {
namespace g = ::grpc;
using inference::GRPCInferenceService;

namespace {

// Calls each queue keeps armed for new requests (as `ferry serve`'s ModelInfer pollers).
constexpr int kArmedPerQueue = 16;

using G = GRPCInferenceService;
namespace inf = inference;

g::Status NotHere(const char* what) {
  return g::Status(g::StatusCode::UNIMPLEMENTED, std::string(what) + " is not supported by the ferry engine gateway");
}

g::Status EngineOwnsModels(const char* what, const std::string& model) {
  return g::Status(g::StatusCode::FAILED_PRECONDITION,
                   std::string("cannot ") + what + " model '" + model +
                       "' through the engine gateway: the engine runs the models of its deployment spec; "
                       "change the spec (ferry engine --config) instead");
}

// The methods the gateway answers itself, from the route table (as the REST gateway's
// /v2/health/*, GET /v2 and /v2/repository/index): every inference method but the
// forwarded ones (grpc_forward's), each parsed and answered on the queue thread that
// accepted the call.
class SelfAnswered final : public grpc_forward::LocalMethods {
 public:
  SelfAnswered(Router* router, std::string version) : router_(router), version_(std::move(version)) {
    Add<inf::ServerLiveRequest, inf::ServerLiveResponse>("ServerLive", [](const auto&, auto* resp) {
      resp->set_live(true);
      return g::Status::OK;
    });
    Add<inf::ServerReadyRequest, inf::ServerReadyResponse>("ServerReady", [this](const auto&, auto* resp) {
      resp->set_ready(GatewayReady(*router_->Snapshot()));
      return g::Status::OK;
    });
    Add<inf::ServerMetadataRequest, inf::ServerMetadataResponse>("ServerMetadata", [this](const auto&, auto* resp) {
      resp->set_name("ferry-engine");
      resp->set_version(version_);
      return g::Status::OK;
    });
    Add<inf::RepositoryIndexRequest, inf::RepositoryIndexResponse>("RepositoryIndex", [this](const auto& req,
                                                                                             auto* resp) {
      auto table = router_->Snapshot();
      std::vector<std::pair<std::string, bool>> models;
      for (const auto& [name, d] : table->by_model) models.emplace_back(name, HasRoutableReplica(*d));
      std::sort(models.begin(), models.end());
      for (const auto& [name, ready] : models) {
        if (req.ready() && !ready) continue;
        auto* m = resp->add_models();
        m->set_name(name);
        m->set_state(ready ? "READY" : "UNAVAILABLE");
        if (!ready) m->set_reason("no ready replica");
      }
      return g::Status::OK;
    });
    Add<inf::RepositoryModelLoadRequest, inf::RepositoryModelLoadResponse>(
        "RepositoryModelLoad", [](const auto& req, auto*) { return EngineOwnsModels("load", req.model_name()); });
    Add<inf::RepositoryModelUnloadRequest, inf::RepositoryModelUnloadResponse>(
        "RepositoryModelUnload", [](const auto& req, auto*) { return EngineOwnsModels("unload", req.model_name()); });
    for (const char* m : {"SystemSharedMemoryStatus", "SystemSharedMemoryRegister", "SystemSharedMemoryUnregister"})
      Unsupported(m, "system shared memory");
    for (const char* m : {"CudaSharedMemoryStatus", "CudaSharedMemoryRegister", "CudaSharedMemoryUnregister"})
      Unsupported(m, "CUDA shared memory");
    Unsupported("TraceSetting", "TraceSetting (tracing)");
    Unsupported("LogSettings", "LogSettings");
  }

  bool Handles(std::string_view method) const override { return methods_.find(method) != methods_.end(); }

  g::Status Answer(std::string_view method, const g::ByteBuffer& request, g::ByteBuffer* response) override {
    auto it = methods_.find(method);
    if (it == methods_.end()) return g::Status(g::StatusCode::UNIMPLEMENTED, "unknown method");
    return it->second(request, response);
  }

 private:
  using Handler = std::function<g::Status(const g::ByteBuffer&, g::ByteBuffer*)>;

  // One method: its request parsed as Req, `answer` fills a Resp, serialized when OK.
  template <typename Req, typename Resp, typename F>
  void Add(const char* name, F answer) {
    methods_.emplace(std::string("/") + G::service_full_name() + "/" + name,
                     [answer = std::move(answer)](const g::ByteBuffer& in, g::ByteBuffer* out) -> g::Status {
                       Req req;
                       g::ByteBuffer bytes(in);  // Deserialize consumes its buffer; this shares the slices
                       if (!g::SerializationTraits<Req>::Deserialize(&bytes, &req).ok())
                         return g::Status(g::StatusCode::INVALID_ARGUMENT,
                                          std::string("cannot parse the request as ") + Req::descriptor()->name());
                       Resp resp;
                       g::Status status = answer(req, &resp);
                       if (!status.ok()) return status;
                       bool own_buffer = false;
                       return g::SerializationTraits<Resp>::Serialize(resp, out, &own_buffer);
                     });
  }
  void Unsupported(const char* name, const char* what) {
    methods_.emplace(std::string("/") + G::service_full_name() + "/" + name,
                     [what](const g::ByteBuffer&, g::ByteBuffer*) { return NotHere(what); });
  }

  Router* router_;
  const std::string version_;
  std::map<std::string, Handler, std::less<>> methods_;  // by full path; set by the constructor
};

// The native transport's method table: forwarded methods, the self-answered ones,
// health and reflection; anything else UNIMPLEMENTED.
class NativeMethods final : public frontend::grpc_native::MethodRouter {
 public:
  using CheckRequest = ::grpc::health::v1::HealthCheckRequest;
  using CheckResponse = ::grpc::health::v1::HealthCheckResponse;
  NativeMethods(grpc_forward::NativeForwardCore* core, frontend::grpc::HealthService* health,
                const frontend::grpc::ReflectionService* reflection)
      : core_(core), health_(health), reflection_(reflection), check_([health](auto* call) { health->Check(call); }) {}

  frontend::grpc_native::Route Find(std::string_view path) override {
    namespace gn = frontend::grpc_native;
    if (const grpc_forward::MethodInfo* m = grpc_forward::FindMethod(path))
      return {grpc_forward::NewNativeForward(core_, m)};
    if (core_->local->Handles(path)) return {grpc_forward::NewNativeLocal(core_, path)};
    if (path == "/grpc.health.v1.Health/Check") return {std::make_unique<gn::NativeUnary<CheckRequest, CheckResponse>>(&check_)};
    if (path == "/grpc.health.v1.Health/Watch") return {gn::NewHealthWatch(health_)};
    if (path == "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") return {gn::NewReflection(reflection_)};
    return {gn::NewUnknownMethod(path)};
  }

 private:
  grpc_forward::NativeForwardCore* core_;
  frontend::grpc::HealthService* health_;
  const frontend::grpc::ReflectionService* reflection_;
  const frontend::grpc_native::NativeUnary<CheckRequest, CheckResponse>::Handler check_;
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
  // transport "native": these instead of `server` and the queues.
  grpc_forward::NativeForwardCore native;
  frontend::grpc_native::ConnectionOptions connection_options;
  std::unique_ptr<NativeMethods> native_methods;
  std::unique_ptr<frontend::grpc_native::NativeListener> listener;  // last: its loops hold the calls

  bool is_native() const { return options.transport == "native"; }
  Status StartNative();
};

Status GrpcGateway::Impl::StartNative() {
  native.router = router;
  native.local = service.get();
  native.tracing = options.tracing;
  connection_options.max_message_bytes = static_cast<size_t>(options.max_message_bytes);
  native_methods = std::make_unique<NativeMethods>(&native, &health, &reflection);
  listener = std::make_unique<frontend::grpc_native::NativeListener>(options.threads, "gateway-grpc-native",
                                                                    &connection_options, native_methods.get());
  Status st = listener->Start(options.address, options.port);
  if (!st.ok()) {
    listener.reset();
    return st;
  }
  port = listener->port();
  return Status::Ok();
}

GrpcGateway::GrpcGateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcGateway::~GrpcGateway() { Stop(0); }

Result<std::unique_ptr<GrpcGateway>> GrpcGateway::Create(GrpcGatewayOptions options, Router* router) {
  if (options.threads <= 0) options.threads = AvailableCores();
  if (options.max_message_bytes <= 0) return InvalidArgument("the gRPC gateway's largest message must be positive");
  if (options.transport != "grpc++" && options.transport != "native")
    return InvalidArgument("grpc gateway: transport '" + options.transport + "' is not grpc++ or native");
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
  s.core.local = s.service.get();
  if (s.is_native()) {
    FERRY_RETURN_IF_ERROR(s.StartNative());  // its loops log "listening" (server=gateway-grpc-native)
    RefreshHealth();
    return Status::Ok();
  }
  g::ServerBuilder builder;
  const std::string addr = s.options.address + ":" + std::to_string(s.options.port);
  builder.AddListeningPort(addr, g::InsecureServerCredentials(), &s.port);
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
  if (s.listener) {
    s.health.Shutdown();
    s.listener->Shutdown(grace_ms, [&s] { s.native.sessions.Clear(); });
    s.listener.reset();
    return;
  }
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
  if (impl_->is_native()) {
    const auto& n = impl_->native;
    return {n.requests.load(), n.retries.load(), n.upstream_errors.load()};
  }
  const auto& c = impl_->core;
  return {c.requests.load(), c.retries.load(), c.upstream_errors.load()};
}

}  // namespace ferry::engine
