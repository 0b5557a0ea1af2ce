#include "frontend/grpc_native/native_grpc_server.h"

#include <boost/asio.hpp>

#include <chrono>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/log.h"
#include "frontend/grpc/inference_methods.h"
#include "frontend/grpc/method_counter.h"
#include "frontend/grpc_native/grpc_connection.h"
#include "frontend/grpc_native/native_listener.h"
#include "frontend/grpc_native/native_infer.h"
#include "frontend/grpc_native/native_services.h"
#include "frontend/grpc_native/native_unary.h"
#include "frontend/http/event_loops.h"

namespace ferry::frontend::grpc_native {
namespace asio = boost::asio;
using inference::GRPCInferenceService;

namespace {

std::string InferencePath(const char* method) {
  return std::string("/") + GRPCInferenceService::service_full_name() + "/" + method;
}

// The method table: full path -> handler factory and counter. Built before serving,
// read-only after.
class Methods final : public MethodRouter {
 public:
  using Factory = std::function<std::unique_ptr<CallHandler>()>;

  Methods(monitoring::Metrics* metrics) : metrics_(metrics), unknown_(metrics, "(unknown)") {}

  void Add(std::string path, Factory factory) {
    auto counter = std::make_unique<grpc::MethodCounter>(metrics_, path);
    entries_.emplace(std::move(path), Entry{std::move(factory), counter.get()});
    counters_.push_back(std::move(counter));
  }

  // A unary method of InferenceMethods: the request_fn tells its types.
  template <typename Base, typename Req, typename Resp>
  void AddUnary(grpc::InferenceMethods::RequestFn<Base, Req, Resp>, const char* name,
                grpc::InferenceMethods::Handler<Req, Resp> handler) {
    auto* kept = &unary_handlers_.emplace_back(std::make_shared<grpc::InferenceMethods::Handler<Req, Resp>>(std::move(handler)));
    auto* h = static_cast<const grpc::InferenceMethods::Handler<Req, Resp>*>(kept->get());
    Add(InferencePath(name), [h] { return std::make_unique<NativeUnary<Req, Resp>>(h); });
  }

  Route Find(std::string_view path) override {
    auto it = entries_.find(path);
    if (it == entries_.end()) return Route{NewUnknownMethod(path), &unknown_};
    return Route{it->second.factory(), it->second.counter};
  }

 private:
  struct Entry {
    Factory factory;
    grpc::MethodCounter* counter;
  };
  monitoring::Metrics* metrics_;
  grpc::MethodCounter unknown_;
  std::map<std::string, Entry, std::less<>> entries_;  // ~25 methods: a few compares, no key copy
  std::vector<std::unique_ptr<grpc::MethodCounter>> counters_;
  std::list<std::shared_ptr<void>> unary_handlers_;
};

}  // namespace

struct NativeGrpcServer::Impl {
  Impl(grpc::GrpcServerOptions o, server::Server* s)
      : options(std::move(o)), server(s), methods(&s->metrics()), handlers(s, options.server_name, options.server_version) {}

  grpc::GrpcServerOptions options;
  server::Server* server;
  ConnectionOptions connection_options;
  grpc::HealthService health;
  grpc::ReflectionService reflection{{GRPCInferenceService::service_full_name(), "grpc.health.v1.Health",
                                      "grpc.reflection.v1alpha.ServerReflection"}};
  Methods methods;
  bool started = false;
  grpc::InferenceMethods handlers;  // after `methods`: its load/unload work drains first
  // Last: destroyed first, with the connections its loops still hold.
  std::unique_ptr<NativeListener> listener;
};

NativeGrpcServer::NativeGrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NativeGrpcServer::~NativeGrpcServer() { Shutdown(0); }

Result<std::unique_ptr<NativeGrpcServer>> NativeGrpcServer::Create(grpc::GrpcServerOptions options,
                                                                 server::Server* server) {
  auto impl = std::make_unique<Impl>(std::move(options), server);
  Impl& s = *impl;
  s.connection_options.max_message_bytes = static_cast<size_t>(s.options.max_message_bytes);
  server::Server* srv = server;
  s.methods.Add(InferencePath("ModelInfer"), [srv] { return NewModelInfer(srv); });
  s.methods.Add(InferencePath("ModelStreamInfer"), [srv] { return NewModelStreamInfer(srv); });
  s.handlers.ForEach([&s](auto request, const char* name, auto handler) {
    s.methods.AddUnary(request, name, std::move(handler));
  });
  grpc::HealthService* health = &s.health;
  using CheckHandler = grpc::InferenceMethods::Handler<::grpc::health::v1::HealthCheckRequest,
                                                       ::grpc::health::v1::HealthCheckResponse>;
  auto check_handler = std::make_shared<CheckHandler>([health](auto* call) { health->Check(call); });
  s.methods.Add("/grpc.health.v1.Health/Check", [check_handler] {
    return std::make_unique<NativeUnary<::grpc::health::v1::HealthCheckRequest, ::grpc::health::v1::HealthCheckResponse>>(
        check_handler.get());
  });
  s.methods.Add("/grpc.health.v1.Health/Watch", [health] { return NewHealthWatch(health); });
  const grpc::ReflectionService* reflection = &s.reflection;
  s.methods.Add("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                [reflection] { return NewReflection(reflection); });
  s.listener = std::make_unique<NativeListener>(0, "grpc", &s.connection_options, &s.methods);
  return std::unique_ptr<NativeGrpcServer>(new NativeGrpcServer(std::move(impl)));
}

Status NativeGrpcServer::Start() {
  Impl& s = *impl_;
  Status st = s.listener->Start(s.options.address, s.options.port);
  if (!st.ok()) return st;
  s.started = true;
  grpc::HealthService* health = &s.health;
  s.server->SetModelReadyListener([health](const std::string& model, bool ready) { health->Set(model, ready); });
  for (const auto& e : s.server->RepositoryIndex(true)) health->Set(e.name, true);
  health->Set(GRPCInferenceService::service_full_name(), true);
  health->Set("", true);
  FERRY_LOG(kInfo, "listening", ("server", "grpc")("transport", "native")("address", s.options.address)("port", port()));
  return Status::Ok();
}

uint16_t NativeGrpcServer::port() const { return impl_->listener->port(); }

void NativeGrpcServer::Shutdown(int grace_ms) {
  Impl& s = *impl_;
  if (!s.started) return;
  s.started = false;
  s.server->SetModelReadyListener(nullptr);
  s.health.Shutdown();
  s.listener->Shutdown(grace_ms);
}

}  // namespace ferry::frontend::grpc_native
