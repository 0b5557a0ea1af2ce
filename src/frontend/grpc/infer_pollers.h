#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "protocol/grpc/grpc_service.grpc.pb.h"
#include "server/server.h"

namespace ferry::frontend::grpc {

namespace internal {
using G = inference::GRPCInferenceService;
// The generated service with ModelInfer, the hot unary RPC, on the completion-queue API
// and every other method on the callback API. ModelInfer must be marked async while it
// is still a sync method (innermost): gRPC keeps a callback handler when a callback
// method is re-marked async, and then never treats the service as async.
using InferAsyncService =
    G::WithCallbackMethod_ServerLive<
    G::WithCallbackMethod_ServerReady<
    G::WithCallbackMethod_ModelReady<
    G::WithCallbackMethod_ServerMetadata<
    G::WithCallbackMethod_ModelMetadata<
    G::WithCallbackMethod_ModelStreamInfer<
    G::WithCallbackMethod_ModelConfig<
    G::WithCallbackMethod_ModelStatistics<
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
    G::WithAsyncMethod_ModelInfer<G::Service>
    >>>>>>>>>>>>>>>>>>>;
}  // namespace internal
using InferAsyncService = internal::InferAsyncService;

// Serves ModelInfer from completion queues polled by ferry's own threads, one queue per
// thread. A poller thread both reads the network and decodes the request, then hands it
// to the Server facade (model work runs on the scheduler's instance threads, never
// here); the instance thread that completes it encodes the response and starts the
// write. Compared with the callback API this saves the hop from gRPC's poller to its
// callback executor threads on every call.
//
// Lifecycle: construct with the ServerBuilder before BuildAndStart (it adds the queues),
// Start() after, then Drain() after grpc::Server::Shutdown has returned and before the
// service is destroyed.
// Thread-safety: Start and Drain are called by the owner thread; the rest is internal.
class InferPollers {
 public:
  InferPollers(::grpc::ServerBuilder* builder, InferAsyncService* service, server::Server* server, int threads);
  ~InferPollers();

  void Start();
  // Waits for calls handed to the Server facade to complete, then shuts the queues down
  // and joins the threads. REQUIRES: grpc::Server::Shutdown has returned.
  void Drain();

 private:
  struct Call;
  void Accept(::grpc::ServerCompletionQueue* cq);
  void Run(::grpc::ServerCompletionQueue* cq);
  void Begin(Call* call);

  InferAsyncService* service_;
  server::Server* server_;
  std::vector<std::unique_ptr<::grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
  std::atomic<int> in_server_{0};  // calls handed to server_ whose callback has not run
  bool drained_ = false;
};

}  // namespace ferry::frontend::grpc
