#include "frontend/grpc/grpc_server.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "core/cpu.h"
#include "core/log.h"
#include "frontend/grpc/call_pollers.h"
#include "frontend/grpc/health_service.h"
#include "frontend/grpc/inference_methods.h"
#include "frontend/grpc/method_counter.h"
#include "frontend/grpc/model_infer_call.h"
#include "frontend/grpc/reflection_service.h"
#include "frontend/grpc/stream_infer.h"
#include "frontend/grpc/unary_call.h"
#include "frontend/grpc/unknown_methods.h"
#include "protocol/grpc/grpc_codec.h"

namespace ferry::frontend::grpc {
namespace g = ::grpc;
using inference::GRPCInferenceService;

namespace {

// Calls each queue keeps armed for the inference RPCs; more concurrent new calls than
// this wait in gRPC's own pending list until a slot is re-armed (at once, on accept).
// The other methods keep one armed call per queue each.
constexpr int kArmedInferPerQueue = 16;

// "/inference.GRPCInferenceService/<method>", the name gRPC gives the method.
std::string InferenceMethod(const char* method) {
  return std::string("/") + GRPCInferenceService::service_full_name() + "/" + method;
}

// A unary method of some async service, armable on any queue.
class UnaryMethod {
 public:
  virtual ~UnaryMethod() = default;
  virtual void Arm(g::ServerCompletionQueue* cq, LiveCalls* live) const = 0;
};

template <typename Req, typename Resp>
class TypedUnaryMethod final : public UnaryMethod {
 public:
  using Call = UnaryCall<Req, Resp>;
  TypedUnaryMethod(typename Call::Method method, monitoring::Metrics* metrics, std::string name)
      : method_(std::move(method)), calls_(metrics, std::move(name)) {
    method_.calls = &calls_;
  }
  void Arm(g::ServerCompletionQueue* cq, LiveCalls* live) const override { Call::Arm(&method_, live, cq); }

 private:
  typename Call::Method method_;
  MethodCounter calls_;
};

// InferenceMethods on the completion-queue API: one armable method each.
class AsyncInferenceMethods {
 public:
  AsyncInferenceMethods(InferenceAsyncService* service, server::Server* server, const GrpcServerOptions& options)
      : handlers_(server, options.server_name, options.server_version) {
    handlers_.ForEach([&](auto request, const char* name, auto handle) { Add(service, server, request, name, handle); });
  }

  // Arms one call of every method on `cq`.
  void Arm(g::ServerCompletionQueue* cq, LiveCalls* live) const {
    for (const auto& m : methods_) m->Arm(cq, live);
  }

 private:
  template <typename Base, typename Req, typename Resp>
  void Add(InferenceAsyncService* service, server::Server* server, InferenceMethods::RequestFn<Base, Req, Resp> request,
           const char* name, InferenceMethods::Handler<Req, Resp> handle) {
    typename UnaryCall<Req, Resp>::Method m;
    m.request = [service, request](g::ServerContext* ctx, Req* req, g::ServerAsyncResponseWriter<Resp>* w,
                                   g::ServerCompletionQueue* cq, void* tag) {
      (service->*request)(ctx, req, w, cq, cq, tag);
    };
    m.handle = std::move(handle);
    methods_.push_back(
        std::make_unique<TypedUnaryMethod<Req, Resp>>(std::move(m), &server->metrics(), InferenceMethod(name)));
  }

  std::vector<std::unique_ptr<UnaryMethod>> methods_;
  // Last: destroyed first, waiting for queued load/unload work.
  InferenceMethods handlers_;
};

}  // namespace

struct GrpcServer::Impl {
  Impl(GrpcServerOptions o, server::Server* s) : options(std::move(o)), server(s) {}

  GrpcServerOptions options;
  server::Server* server;
  InferenceAsyncService service;
  // Finished calls by method and status (ferry_grpc_requests_total); the unary
  // inference methods' counters live in `methods`.
  MethodCounter infer_calls{&server->metrics(), InferenceMethod("ModelInfer")};
  MethodCounter stream_calls{&server->metrics(), InferenceMethod("ModelStreamInfer")};
  MethodCounter check_calls{&server->metrics(), "/grpc.health.v1.Health/Check"};
  MethodCounter watch_calls{&server->metrics(), "/grpc.health.v1.Health/Watch"};
  MethodCounter reflection_calls{&server->metrics(), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"};
  HealthService health{&check_calls, &watch_calls};
  ReflectionService reflection{{GRPCInferenceService::service_full_name(), "grpc.health.v1.Health",
                                "grpc.reflection.v1alpha.ServerReflection"},
                               &reflection_calls};
  MethodCounter unknown_calls{&server->metrics(), "(unknown)"};
  UnknownMethods unknown{&unknown_calls};
  std::unique_ptr<AsyncInferenceMethods> methods;
  InferenceCallEnv env{};
  std::unique_ptr<CallPollers> pollers;
  std::unique_ptr<g::Server> grpc_server;
  int port = 0;
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcServer::~GrpcServer() { Shutdown(0); }

Result<std::unique_ptr<GrpcServer>> GrpcServer::Create(GrpcServerOptions options, server::Server* server) {
  auto impl = std::make_unique<Impl>(std::move(options), server);
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

Status GrpcServer::Start() {
  Impl& s = *impl_;
  // Debian's abseil is built with mutex deadlock detection on, which cost ~6% of the
  // gRPC path's CPU in a profile (cycle graphs on every lock); ferry does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  s.methods = std::make_unique<AsyncInferenceMethods>(&s.service, s.server, s.options);
  g::ServerBuilder builder;
  std::string addr = s.options.address + ":" + std::to_string(s.options.port);
  builder.AddListeningPort(addr, g::InsecureServerCredentials(), &s.port);
  builder.RegisterService(&s.service);
  builder.RegisterService(s.health.service());
  builder.RegisterService(s.reflection.service());
  builder.RegisterAsyncGenericService(s.unknown.service());
  builder.SetMaxReceiveMessageSize(s.options.max_message_bytes);
  builder.SetMaxSendMessageSize(s.options.max_message_bytes);
  s.pollers = std::make_unique<CallPollers>(&builder, AvailableCores());
  s.env = InferenceCallEnv{&s.service, s.server, s.pollers->live(), &s.infer_calls, &s.stream_calls};
  s.grpc_server = builder.BuildAndStart();
  if (!s.grpc_server || s.port == 0) {
    s.grpc_server.reset();
    s.pollers.reset();
    return Unavailable("grpc: cannot listen on " + addr);
  }
  s.pollers->Start([&s](g::ServerCompletionQueue* cq) {
    LiveCalls* live = s.pollers->live();
    for (int i = 0; i < kArmedInferPerQueue; ++i) {
      ArmModelInfer(&s.env, cq);
      ArmModelStreamInfer(&s.env, cq);
    }
    s.methods->Arm(cq, live);
    s.health.Arm(cq, live);
    s.reflection.Arm(cq, live);
    s.unknown.Arm(cq, live);
  });

  // Per-model statuses follow loads and unloads; seed them with what is ready now.
  HealthService* health = &s.health;
  s.server->SetModelReadyListener([health](const std::string& model, bool ready) { health->Set(model, ready); });
  for (const auto& e : s.server->RepositoryIndex(true)) health->Set(e.name, true);
  health->Set(GRPCInferenceService::service_full_name(), true);
  health->Set("", true);
  FERRY_LOG(kInfo, "listening", ("server", "grpc")("address", s.options.address)("port", s.port));
  return Status::Ok();
}

uint16_t GrpcServer::port() const { return static_cast<uint16_t>(impl_->port); }

void GrpcServer::Shutdown(int grace_ms) {
  Impl& s = *impl_;
  if (!s.grpc_server) return;
  s.server->SetModelReadyListener(nullptr);
  s.health.Shutdown();
  s.grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  s.pollers->Drain();
  s.grpc_server->Wait();
  s.grpc_server.reset();
  s.pollers.reset();
  s.methods.reset();
}

}  // namespace ferry::frontend::grpc
