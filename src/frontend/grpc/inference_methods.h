#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <string>

#include "core/worker_pool.h"
#include "frontend/grpc/model_infer_call.h"
#include "frontend/grpc/unary_call.h"
#include "protocol/grpc/grpc_service.grpc.pb.h"
#include "server/server.h"

namespace ferry::frontend::grpc {

// What the unary RPCs of GRPCInferenceService other than ModelInfer answer, whichever
// transport serves them (grpc++'s completion queues in GrpcServer, or the native HTTP/2
// transport). Each answers at once from the Server facade's in-memory state, except
// repository load and unload, which block and run on a private control thread.
// Thread-safety: the handlers may run on any thread, concurrently. Outlives every call
// handed to its handlers (destroying it waits for queued load/unload work).
class InferenceMethods {
 public:
  InferenceMethods(server::Server* server, std::string server_name, std::string server_version)
      : server_(server), server_name_(std::move(server_name)), server_version_(std::move(server_version)) {}

  // How the generated AsyncService requests a unary method (`Base` is the generated
  // WithAsyncMethod_* class that declares it).
  template <typename Base, typename Req, typename Resp>
  using RequestFn = void (Base::*)(::grpc::ServerContext*, Req*, ::grpc::ServerAsyncResponseWriter<Resp>*,
                                   ::grpc::CompletionQueue*, ::grpc::ServerCompletionQueue*, void*);
  template <typename Req, typename Resp>
  using Handler = std::function<void(UnaryExchange<Req, Resp>*)>;

  // Calls `add(request_fn, "Name", Handler<Req, Resp>)` once per method: request_fn is
  // the AsyncService member that requests it (grpc++ arms calls with it; another
  // transport takes only its types), "Name" the method's short name.
  template <typename Add>
  void ForEach(Add&& add);

 private:
  template <typename Req, typename Resp, typename AnswerFn>
  static Handler<Req, Resp> Answer(AnswerFn answer) {
    return [answer = std::move(answer)](UnaryExchange<Req, Resp>* call) {
      call->Finish(answer(call->request(), call->response()));
    };
  }
  template <typename Req, typename Resp>
  static Handler<Req, Resp> Refuse(const char* what) {
    return [what](UnaryExchange<Req, Resp>* call) {
      call->Finish(::grpc::Status(::grpc::StatusCode::UNIMPLEMENTED, std::string(what) + " is not supported by this server"));
    };
  }
  // Runs a blocking repository operation off the serving threads and finishes the call.
  template <typename Call, typename Op>
  void Control(Call* call, Op op) {
    control_.Run([call, op = std::move(op)] { call->Finish(ToGrpc(op())); });
  }

  ::grpc::Status ModelMetadata(const inference::ModelMetadataRequest& req, inference::ModelMetadataResponse* resp);
  ::grpc::Status ModelStatistics(const inference::ModelStatisticsRequest& req, inference::ModelStatisticsResponse* resp);
  void RepositoryIndex(const inference::RepositoryIndexRequest& req, inference::RepositoryIndexResponse* resp);

  server::Server* server_;
  const std::string server_name_, server_version_;
  // Repository load/unload; its thread starts with the first such call and ends when
  // idle. Last member: destroyed first, after queued work ran.
  WorkerPool control_{WorkerPoolOptions{1, std::chrono::seconds(10)}};
};

// ---------------------------------------------------------------- implementation

template <typename Add>
void InferenceMethods::ForEach(Add&& add) {
  using S = InferenceAsyncService;
  namespace in = ::inference;
  using ::grpc::Status;
  add(&S::RequestServerLive, "ServerLive",
      Answer<in::ServerLiveRequest, in::ServerLiveResponse>([this](const auto&, auto* resp) {
        resp->set_live(server_->Live());
        return Status::OK;
      }));
  add(&S::RequestServerReady, "ServerReady",
      Answer<in::ServerReadyRequest, in::ServerReadyResponse>([this](const auto&, auto* resp) {
        resp->set_ready(server_->Ready());
        return Status::OK;
      }));
  add(&S::RequestModelReady, "ModelReady",
      Answer<in::ModelReadyRequest, in::ModelReadyResponse>([this](const auto& req, auto* resp) {
        auto ready = server_->ModelReady(req.name(), req.version());
        if (!ready.ok() && ready.status().code() != StatusCode::kNotFound) return ToGrpc(ready.status());
        resp->set_ready(ready.ok() && *ready);
        return Status::OK;
      }));
  add(&S::RequestServerMetadata, "ServerMetadata",
      Answer<in::ServerMetadataRequest, in::ServerMetadataResponse>([this](const auto&, auto* resp) {
        resp->set_name(server_name_);
        resp->set_version(server_version_);
        for (const auto& e : server::Server::Extensions()) resp->add_extensions(e);
        return Status::OK;
      }));
  add(&S::RequestModelMetadata, "ModelMetadata",
      Answer<in::ModelMetadataRequest, in::ModelMetadataResponse>(
          [this](const auto& req, auto* resp) { return ModelMetadata(req, resp); }));
  add(&S::RequestModelConfig, "ModelConfig",
      Answer<in::ModelConfigRequest, in::ModelConfigResponse>([this](const auto& req, auto* resp) {
        auto config = server_->GetModelConfig(req.name(), req.version());
        if (!config.ok()) return ToGrpc(config.status());
        *resp->mutable_config() = std::move(config).value();
        return Status::OK;
      }));
  add(&S::RequestModelStatistics, "ModelStatistics",
      Answer<in::ModelStatisticsRequest, in::ModelStatisticsResponse>(
          [this](const auto& req, auto* resp) { return ModelStatistics(req, resp); }));
  add(&S::RequestRepositoryIndex, "RepositoryIndex",
      Answer<in::RepositoryIndexRequest, in::RepositoryIndexResponse>([this](const auto& req, auto* resp) {
        RepositoryIndex(req, resp);
        return Status::OK;
      }));
  add(&S::RequestRepositoryModelLoad, "RepositoryModelLoad",
      Handler<in::RepositoryModelLoadRequest, in::RepositoryModelLoadResponse>([this](auto* call) {
        const auto& req = call->request();
        if (!req.repository_name().empty())
          return call->Finish(Status(::grpc::StatusCode::UNIMPLEMENTED, "'repository_name' specification is not supported"));
        for (const auto& [key, value] : req.parameters())
          return call->Finish(Status(::grpc::StatusCode::INVALID_ARGUMENT, "unrecognized load parameter '" + key + "'"));
        Control(call, [this, model = req.model_name()] { return server_->LoadModel(model); });
      }));
  add(&S::RequestRepositoryModelUnload, "RepositoryModelUnload",
      Handler<in::RepositoryModelUnloadRequest, in::RepositoryModelUnloadResponse>([this](auto* call) {
        const auto& req = call->request();
        if (!req.repository_name().empty())
          return call->Finish(Status(::grpc::StatusCode::UNIMPLEMENTED, "'repository_name' specification is not supported"));
        for (const auto& [key, value] : req.parameters())
          if (key != "unload_dependents")
            return call->Finish(Status(::grpc::StatusCode::INVALID_ARGUMENT, "unrecognized unload parameter '" + key + "'"));
        Control(call, [this, model = req.model_name()] { return server_->UnloadModel(model); });
      }));
  add(&S::RequestSystemSharedMemoryStatus, "SystemSharedMemoryStatus",
      Refuse<in::SystemSharedMemoryStatusRequest, in::SystemSharedMemoryStatusResponse>("system shared memory"));
  add(&S::RequestSystemSharedMemoryRegister, "SystemSharedMemoryRegister",
      Refuse<in::SystemSharedMemoryRegisterRequest, in::SystemSharedMemoryRegisterResponse>("system shared memory"));
  add(&S::RequestSystemSharedMemoryUnregister, "SystemSharedMemoryUnregister",
      Refuse<in::SystemSharedMemoryUnregisterRequest, in::SystemSharedMemoryUnregisterResponse>("system shared memory"));
  add(&S::RequestCudaSharedMemoryStatus, "CudaSharedMemoryStatus",
      Refuse<in::CudaSharedMemoryStatusRequest, in::CudaSharedMemoryStatusResponse>("CUDA shared memory"));
  add(&S::RequestCudaSharedMemoryRegister, "CudaSharedMemoryRegister",
      Refuse<in::CudaSharedMemoryRegisterRequest, in::CudaSharedMemoryRegisterResponse>("CUDA shared memory"));
  add(&S::RequestCudaSharedMemoryUnregister, "CudaSharedMemoryUnregister",
      Refuse<in::CudaSharedMemoryUnregisterRequest, in::CudaSharedMemoryUnregisterResponse>("CUDA shared memory"));
  add(&S::RequestTraceSetting, "TraceSetting",
      Refuse<in::TraceSettingRequest, in::TraceSettingResponse>("TraceSetting (tracing)"));
  add(&S::RequestLogSettings, "LogSettings", Refuse<in::LogSettingsRequest, in::LogSettingsResponse>("LogSettings"));
}

}  // namespace ferry::frontend::grpc
