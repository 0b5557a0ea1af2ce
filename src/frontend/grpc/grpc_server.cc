#include "frontend/grpc/grpc_server.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "core/cpu.h"
#include "core/log.h"
#include "core/worker_pool.h"
#include "frontend/grpc/call_pollers.h"
#include "frontend/grpc/health_service.h"
#include "frontend/grpc/method_counter.h"
#include "frontend/grpc/model_infer_call.h"
#include "frontend/grpc/reflection_service.h"
#include "frontend/grpc/stream_infer.h"
#include "frontend/grpc/unary_call.h"
#include "frontend/grpc/unknown_methods.h"
#include "protocol/grpc/grpc_codec.h"
#include "protocol/grpc/statistics_proto.h"

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

g::Status NotYet(const char* what) {
  return g::Status(g::StatusCode::UNIMPLEMENTED, std::string(what) + " is not supported by this server");
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

// The unary RPCs of GRPCInferenceService other than ModelInfer. Each answers on the
// polling thread from the Server facade's in-memory state, except repository load and
// unload, which block and run on a private control thread.
class InferenceMethods {
 public:
  InferenceMethods(InferenceAsyncService* service, server::Server* server, GrpcServerOptions options)
      : service_(service), server_(server), options_(std::move(options)) {
    Answer(&InferenceAsyncService::RequestServerLive, "ServerLive",
           [this](const inference::ServerLiveRequest&, inference::ServerLiveResponse* resp) {
             resp->set_live(server_->Live());
             return g::Status::OK;
           });
    Answer(&InferenceAsyncService::RequestServerReady, "ServerReady",
           [this](const inference::ServerReadyRequest&, inference::ServerReadyResponse* resp) {
             resp->set_ready(server_->Ready());
             return g::Status::OK;
           });
    Answer(&InferenceAsyncService::RequestModelReady, "ModelReady",
           [this](const inference::ModelReadyRequest& req, inference::ModelReadyResponse* resp) {
             auto ready = server_->ModelReady(req.name(), req.version());
             if (!ready.ok() && ready.status().code() != StatusCode::kNotFound) return ToGrpc(ready.status());
             resp->set_ready(ready.ok() && *ready);
             return g::Status::OK;
           });
    Answer(&InferenceAsyncService::RequestServerMetadata, "ServerMetadata",
           [this](const inference::ServerMetadataRequest&, inference::ServerMetadataResponse* resp) {
             resp->set_name(options_.server_name);
             resp->set_version(options_.server_version);
             for (const auto& e : server::Server::Extensions()) resp->add_extensions(e);
             return g::Status::OK;
           });
    Answer(&InferenceAsyncService::RequestModelMetadata, "ModelMetadata",
           [this](const inference::ModelMetadataRequest& req, inference::ModelMetadataResponse* resp) {
             return ModelMetadata(req, resp);
           });
    Answer(&InferenceAsyncService::RequestModelConfig, "ModelConfig",
           [this](const inference::ModelConfigRequest& req, inference::ModelConfigResponse* resp) {
             auto config = server_->GetModelConfig(req.name(), req.version());
             if (!config.ok()) return ToGrpc(config.status());
             *resp->mutable_config() = std::move(config).value();
             return g::Status::OK;
           });
    Answer(&InferenceAsyncService::RequestModelStatistics, "ModelStatistics",
           [this](const inference::ModelStatisticsRequest& req, inference::ModelStatisticsResponse* resp) {
             return ModelStatistics(req, resp);
           });
    Answer(&InferenceAsyncService::RequestRepositoryIndex, "RepositoryIndex",
           [this](const inference::RepositoryIndexRequest& req, inference::RepositoryIndexResponse* resp) {
             for (const auto& e : server_->RepositoryIndex(req.ready())) {
               auto* m = resp->add_models();
               m->set_name(e.name);
               m->set_version(e.version);
               if (e.state != server::ModelState::kUnknown) m->set_state(std::string(server::ModelStateName(e.state)));
               m->set_reason(e.reason);
             }
             return g::Status::OK;
           });
    Add(&InferenceAsyncService::RequestRepositoryModelLoad, "RepositoryModelLoad",
        [this](UnaryCall<inference::RepositoryModelLoadRequest, inference::RepositoryModelLoadResponse>* call) {
          const auto& req = call->request();
          if (!req.repository_name().empty())
            return call->Finish(g::Status(g::StatusCode::UNIMPLEMENTED, "'repository_name' specification is not supported"));
          for (const auto& [key, value] : req.parameters())
            return call->Finish(g::Status(g::StatusCode::INVALID_ARGUMENT, "unrecognized load parameter '" + key + "'"));
          Control(call, [this, model = req.model_name()] { return server_->LoadModel(model); });
        });
    Add(&InferenceAsyncService::RequestRepositoryModelUnload, "RepositoryModelUnload",
        [this](UnaryCall<inference::RepositoryModelUnloadRequest, inference::RepositoryModelUnloadResponse>* call) {
          const auto& req = call->request();
          if (!req.repository_name().empty())
            return call->Finish(g::Status(g::StatusCode::UNIMPLEMENTED, "'repository_name' specification is not supported"));
          for (const auto& [key, value] : req.parameters())
            if (key != "unload_dependents")
              return call->Finish(
                  g::Status(g::StatusCode::INVALID_ARGUMENT, "unrecognized unload parameter '" + key + "'"));
          Control(call, [this, model = req.model_name()] { return server_->UnloadModel(model); });
        });
    Refuse(&InferenceAsyncService::RequestSystemSharedMemoryStatus, "SystemSharedMemoryStatus", "system shared memory");
    Refuse(&InferenceAsyncService::RequestSystemSharedMemoryRegister, "SystemSharedMemoryRegister", "system shared memory");
    Refuse(&InferenceAsyncService::RequestSystemSharedMemoryUnregister, "SystemSharedMemoryUnregister", "system shared memory");
    Refuse(&InferenceAsyncService::RequestCudaSharedMemoryStatus, "CudaSharedMemoryStatus", "CUDA shared memory");
    Refuse(&InferenceAsyncService::RequestCudaSharedMemoryRegister, "CudaSharedMemoryRegister", "CUDA shared memory");
    Refuse(&InferenceAsyncService::RequestCudaSharedMemoryUnregister, "CudaSharedMemoryUnregister", "CUDA shared memory");
    Refuse(&InferenceAsyncService::RequestTraceSetting, "TraceSetting", "TraceSetting (tracing)");
    Refuse(&InferenceAsyncService::RequestLogSettings, "LogSettings", "LogSettings");
  }

  // Arms one call of every method on `cq`.
  void Arm(g::ServerCompletionQueue* cq, LiveCalls* live) const {
    for (const auto& m : methods_) m->Arm(cq, live);
  }

 private:
  // How the generated AsyncService requests a unary method (`Base` is the generated
  // WithAsyncMethod_* class that declares it).
  template <typename Base, typename Req, typename Resp>
  using RequestFn = void (Base::*)(g::ServerContext*, Req*, g::ServerAsyncResponseWriter<Resp>*, g::CompletionQueue*,
                                   g::ServerCompletionQueue*, void*);

  template <typename Base, typename Req, typename Resp, typename Handle>
  void Add(RequestFn<Base, Req, Resp> request, const char* name, Handle handle) {
    typename UnaryCall<Req, Resp>::Method m;
    m.request = [service = service_, request](g::ServerContext* ctx, Req* req, g::ServerAsyncResponseWriter<Resp>* w,
                                              g::ServerCompletionQueue* cq, void* tag) {
      (service->*request)(ctx, req, w, cq, cq, tag);
    };
    m.handle = std::move(handle);
    methods_.push_back(
        std::make_unique<TypedUnaryMethod<Req, Resp>>(std::move(m), &server_->metrics(), InferenceMethod(name)));
  }

  // A method answered at once: `answer(request, &response)` returns the status.
  template <typename Base, typename Req, typename Resp, typename AnswerFn>
  void Answer(RequestFn<Base, Req, Resp> request, const char* name, AnswerFn answer) {
    Add(request, name, [answer = std::move(answer)](UnaryCall<Req, Resp>* call) {
      call->Finish(answer(call->request(), call->response()));
    });
  }

  template <typename Base, typename Req, typename Resp>
  void Refuse(RequestFn<Base, Req, Resp> request, const char* name, const char* what) {
    Add(request, name, [what](UnaryCall<Req, Resp>* call) { call->Finish(NotYet(what)); });
  }

  // Runs a blocking repository operation off the polling threads and finishes the call.
  template <typename Call, typename Op>
  void Control(Call* call, Op op) {
    control_.Run([call, op = std::move(op)] { call->Finish(ToGrpc(op())); });
  }

  g::Status ModelMetadata(const inference::ModelMetadataRequest& req, inference::ModelMetadataResponse* resp) {
    auto md = server_->GetModelMetadata(req.name(), req.version());
    if (!md.ok()) return ToGrpc(md.status());
    resp->set_name(md->name);
    for (const auto& v : md->versions) resp->add_versions(v);
    resp->set_platform(md->platform);
    auto add = [](const std::vector<server::TensorMetadata>& from, auto* to) {
      for (const auto& t : from) {
        auto* m = to->Add();
        m->set_name(t.name);
        m->set_datatype(std::string(DataTypeName(t.datatype)));
        for (int64_t d : t.shape) m->add_shape(d);
      }
    };
    add(md->inputs, resp->mutable_inputs());
    add(md->outputs, resp->mutable_outputs());
    return g::Status::OK;
  }

  g::Status ModelStatistics(const inference::ModelStatisticsRequest& req, inference::ModelStatisticsResponse* resp) {
    auto stats = server_->GetStatistics(req.name(), req.version());
    if (!stats.ok()) return ToGrpc(stats.status());
    protocol::StatisticsToProto(*stats, resp);
    return g::Status::OK;
  }

  InferenceAsyncService* service_;
  server::Server* server_;
  const GrpcServerOptions options_;
  std::vector<std::unique_ptr<UnaryMethod>> methods_;
  // Repository load/unload, off the polling threads; its thread starts with the first
  // such call and ends when idle. Last member: destroyed first, after queued work ran.
  WorkerPool control_{WorkerPoolOptions{1, std::chrono::seconds(10)}};
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
  std::unique_ptr<InferenceMethods> methods;
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
  s.methods = std::make_unique<InferenceMethods>(&s.service, s.server, s.options);
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
