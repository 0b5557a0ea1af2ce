#include "frontend/grpc/grpc_server.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "core/cpu.h"
#include "core/log.h"
#include "core/worker_pool.h"
#include "frontend/grpc/call_counter.h"
#include "frontend/grpc/health_service.h"
#include "frontend/grpc/infer_pollers.h"
#include "frontend/grpc/stream_infer.h"
#include "protocol/error_map.h"
#include "protocol/grpc/grpc_codec.h"
#include "protocol/grpc/grpc_service.grpc.pb.h"

namespace ferry::frontend::grpc {
namespace g = ::grpc;
using inference::GRPCInferenceService;

std::optional<TraceContext> TraceParent(const std::multimap<g::string_ref, g::string_ref>& metadata) {
  auto it = metadata.find("traceparent");
  if (it == metadata.end()) return std::nullopt;
  return TraceContext::Parse(std::string_view(it->second.data(), it->second.size()));
}

g::Status ToGrpc(const Status& s) {
  if (s.ok()) return g::Status::OK;
  return g::Status(static_cast<g::StatusCode>(protocol::GrpcCodeFor(s.code())), s.message());
}

namespace {

g::ServerUnaryReactor* Done(g::CallbackServerContext* ctx, const g::Status& s) {
  g::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(s);
  return r;
}

g::ServerUnaryReactor* NotYet(g::CallbackServerContext* ctx, const char* what) {
  return Done(ctx, g::Status(g::StatusCode::UNIMPLEMENTED, std::string(what) + " is not supported by this server"));
}

class Service final : public InferAsyncService {
 public:
  Service(server::Server* server, GrpcServerOptions options) : server_(server), options_(std::move(options)) {}

  g::ServerUnaryReactor* ServerLive(g::CallbackServerContext* ctx, const inference::ServerLiveRequest*,
                                    inference::ServerLiveResponse* resp) override {
    resp->set_live(server_->Live());
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* ServerReady(g::CallbackServerContext* ctx, const inference::ServerReadyRequest*,
                                     inference::ServerReadyResponse* resp) override {
    resp->set_ready(server_->Ready());
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* ModelReady(g::CallbackServerContext* ctx, const inference::ModelReadyRequest* req,
                                    inference::ModelReadyResponse* resp) override {
    auto ready = server_->ModelReady(req->name(), req->version());
    if (!ready.ok() && ready.status().code() != StatusCode::kNotFound) return Done(ctx, ToGrpc(ready.status()));
    resp->set_ready(ready.ok() && *ready);
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* ServerMetadata(g::CallbackServerContext* ctx, const inference::ServerMetadataRequest*,
                                        inference::ServerMetadataResponse* resp) override {
    resp->set_name(options_.server_name);
    resp->set_version(options_.server_version);
    for (const auto& e : server::Server::Extensions()) resp->add_extensions(e);
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* ModelMetadata(g::CallbackServerContext* ctx, const inference::ModelMetadataRequest* req,
                                       inference::ModelMetadataResponse* resp) override {
    auto md = server_->GetModelMetadata(req->name(), req->version());
    if (!md.ok()) return Done(ctx, ToGrpc(md.status()));
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
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* ModelConfig(g::CallbackServerContext* ctx, const inference::ModelConfigRequest* req,
                                     inference::ModelConfigResponse* resp) override {
    auto config = server_->GetModelConfig(req->name(), req->version());
    if (!config.ok()) return Done(ctx, ToGrpc(config.status()));
    *resp->mutable_config() = std::move(config).value();
    return Done(ctx, g::Status::OK);
  }

  // ModelInfer is served by InferPollers (completion-queue API).

  g::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>* ModelStreamInfer(
      g::CallbackServerContext* ctx) override {
    return NewStreamInferReactor(server_, ctx);
  }

  g::ServerUnaryReactor* ModelStatistics(g::CallbackServerContext* ctx, const inference::ModelStatisticsRequest* req,
                                         inference::ModelStatisticsResponse* resp) override {
    auto stats = server_->GetStatistics(req->name(), req->version());
    if (!stats.ok()) return Done(ctx, ToGrpc(stats.status()));
    auto set = [](inference::StatisticDuration* d, const server::Duration& from) {
      d->set_count(from.count);
      d->set_ns(from.ns);
    };
    for (const auto& s : *stats) {
      auto* m = resp->add_model_stats();
      m->set_name(s.name);
      m->set_version(s.version);
      m->set_last_inference(s.last_inference_ms);
      m->set_inference_count(s.inference_count);
      m->set_execution_count(s.execution_count);
      auto* is = m->mutable_inference_stats();
      set(is->mutable_success(), s.success);
      set(is->mutable_fail(), s.fail);
      set(is->mutable_queue(), s.queue);
      set(is->mutable_compute_input(), s.compute_input);
      set(is->mutable_compute_infer(), s.compute_infer);
      set(is->mutable_compute_output(), s.compute_output);
      set(is->mutable_cache_hit(), s.cache_hit);
      set(is->mutable_cache_miss(), s.cache_miss);
      for (const auto& b : s.batches) {
        auto* bs = m->add_batch_stats();
        bs->set_batch_size(b.batch_size);
        set(bs->mutable_compute_input(), b.compute_input);
        set(bs->mutable_compute_infer(), b.compute_infer);
        set(bs->mutable_compute_output(), b.compute_output);
      }
    }
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* RepositoryIndex(g::CallbackServerContext* ctx, const inference::RepositoryIndexRequest* req,
                                         inference::RepositoryIndexResponse* resp) override {
    for (const auto& e : server_->RepositoryIndex(req->ready())) {
      auto* m = resp->add_models();
      m->set_name(e.name);
      m->set_version(e.version);
      if (e.state != server::ModelState::kUnknown) m->set_state(std::string(server::ModelStateName(e.state)));
      m->set_reason(e.reason);
    }
    return Done(ctx, g::Status::OK);
  }

  g::ServerUnaryReactor* RepositoryModelLoad(g::CallbackServerContext* ctx,
                                             const inference::RepositoryModelLoadRequest* req,
                                             inference::RepositoryModelLoadResponse*) override {
    if (!req->repository_name().empty())
      return Done(ctx, g::Status(g::StatusCode::UNIMPLEMENTED, "'repository_name' specification is not supported"));
    for (const auto& [key, value] : req->parameters())
      return Done(ctx, g::Status(g::StatusCode::INVALID_ARGUMENT, "unrecognized load parameter '" + key + "'"));
    return Control(ctx, [this, model = req->model_name()] { return server_->LoadModel(model); });
  }

  g::ServerUnaryReactor* RepositoryModelUnload(g::CallbackServerContext* ctx,
                                               const inference::RepositoryModelUnloadRequest* req,
                                               inference::RepositoryModelUnloadResponse*) override {
    if (!req->repository_name().empty())
      return Done(ctx, g::Status(g::StatusCode::UNIMPLEMENTED, "'repository_name' specification is not supported"));
    for (const auto& [key, value] : req->parameters())
      if (key != "unload_dependents")
        return Done(ctx, g::Status(g::StatusCode::INVALID_ARGUMENT, "unrecognized unload parameter '" + key + "'"));
    return Control(ctx, [this, model = req->model_name()] { return server_->UnloadModel(model); });
  }

  g::ServerUnaryReactor* SystemSharedMemoryStatus(g::CallbackServerContext* ctx,
                                                  const inference::SystemSharedMemoryStatusRequest*,
                                                  inference::SystemSharedMemoryStatusResponse*) override {
    return NotYet(ctx, "system shared memory");
  }
  g::ServerUnaryReactor* SystemSharedMemoryRegister(g::CallbackServerContext* ctx,
                                                    const inference::SystemSharedMemoryRegisterRequest*,
                                                    inference::SystemSharedMemoryRegisterResponse*) override {
    return NotYet(ctx, "system shared memory");
  }
  g::ServerUnaryReactor* SystemSharedMemoryUnregister(g::CallbackServerContext* ctx,
                                                      const inference::SystemSharedMemoryUnregisterRequest*,
                                                      inference::SystemSharedMemoryUnregisterResponse*) override {
    return NotYet(ctx, "system shared memory");
  }
  g::ServerUnaryReactor* CudaSharedMemoryStatus(g::CallbackServerContext* ctx,
                                                const inference::CudaSharedMemoryStatusRequest*,
                                                inference::CudaSharedMemoryStatusResponse*) override {
    return NotYet(ctx, "CUDA shared memory");
  }
  g::ServerUnaryReactor* CudaSharedMemoryRegister(g::CallbackServerContext* ctx,
                                                  const inference::CudaSharedMemoryRegisterRequest*,
                                                  inference::CudaSharedMemoryRegisterResponse*) override {
    return NotYet(ctx, "CUDA shared memory");
  }
  g::ServerUnaryReactor* CudaSharedMemoryUnregister(g::CallbackServerContext* ctx,
                                                    const inference::CudaSharedMemoryUnregisterRequest*,
                                                    inference::CudaSharedMemoryUnregisterResponse*) override {
    return NotYet(ctx, "CUDA shared memory");
  }
  g::ServerUnaryReactor* TraceSetting(g::CallbackServerContext* ctx, const inference::TraceSettingRequest*,
                                      inference::TraceSettingResponse*) override {
    return NotYet(ctx, "TraceSetting (tracing)");
  }
  g::ServerUnaryReactor* LogSettings(g::CallbackServerContext* ctx, const inference::LogSettingsRequest*,
                                     inference::LogSettingsResponse*) override {
    return NotYet(ctx, "LogSettings");
  }

 private:
  // Runs a blocking repository operation off the gRPC threads and finishes the call.
  template <typename Op>
  g::ServerUnaryReactor* Control(g::CallbackServerContext* ctx, Op op) {
    g::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    control_.Run([reactor, op = std::move(op)] { reactor->Finish(ToGrpc(op())); });
    return reactor;
  }

  server::Server* server_;
  const GrpcServerOptions options_;
  // Repository load/unload, off the callback threads; its thread starts with the first
  // such call and ends when idle. Last member: destroyed first, after queued work ran.
  WorkerPool control_{WorkerPoolOptions{1, std::chrono::seconds(10)}};
};

}  // namespace

struct GrpcServer::Impl {
  GrpcServerOptions options;
  server::Server* server = nullptr;
  std::unique_ptr<Service> service;
  std::unique_ptr<InferPollers> pollers;
  HealthService health;
  std::unique_ptr<g::Server> grpc_server;
  int port = 0;
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcServer::~GrpcServer() { Shutdown(0); }

Result<std::unique_ptr<GrpcServer>> GrpcServer::Create(GrpcServerOptions options, server::Server* server) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->server = server;
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

Status GrpcServer::Start() {
  Impl& s = *impl_;
  // Debian's abseil is built with mutex deadlock detection on, which cost ~6% of the
  // gRPC path's CPU in a profile (cycle graphs on every lock); ferry does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  g::reflection::InitProtoReflectionServerBuilderPlugin();
  s.service = std::make_unique<Service>(s.server, s.options);
  g::ServerBuilder builder;
  std::string addr = s.options.address + ":" + std::to_string(s.options.port);
  builder.AddListeningPort(addr, g::InsecureServerCredentials(), &s.port);
  builder.RegisterService(s.service.get());
  builder.RegisterService(&s.health);
  builder.SetMaxReceiveMessageSize(s.options.max_message_bytes);
  builder.SetMaxSendMessageSize(s.options.max_message_bytes);
  std::vector<std::unique_ptr<g::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<CallCounterFactory>(&s.server->metrics()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  s.pollers = std::make_unique<InferPollers>(&builder, s.service.get(), s.server, AvailableCores());
  s.grpc_server = builder.BuildAndStart();
  if (!s.grpc_server || s.port == 0) {
    s.pollers.reset();
    return Unavailable("grpc: cannot listen on " + addr);
  }
  s.pollers->Start();

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
  s.service.reset();
}

}  // namespace ferry::frontend::grpc
