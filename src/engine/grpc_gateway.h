#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "engine/gateway_trace.h"
#include "engine/router.h"

namespace ferry::engine {

struct GrpcGatewayOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 8081;
  int threads = 0;  // completion queues, one polling thread each; 0 = one per core
  int max_message_bytes = 64 << 20;  // client-facing, both directions (as `ferry serve`)
  std::string version;               // for ServerMetadata
  GatewayTracing tracing;            // the engine's spans (exporter null: off)
  // What carries gRPC, both to clients and to replicas: "native" (ferry's HTTP/2
  // transport on libnghttp2, as `ferry serve --grpc-transport native`; 0.53-0.60x the
  // gateway CPU per call of grpc++'s, docs/benchmarks.md) or "grpc++" (the gRPC C++ library).
  std::string transport = "native";
};

// The engine's gRPC gateway: inference.GRPCInferenceService as `ferry serve` speaks it,
// plus grpc.health.v1.Health and server reflection, so tritonclient.grpc, perf_analyzer
// and grpcurl work through it unchanged.
//
// ModelStatistics asks every ready replica of the model's deployment and sums their
// answers (StatisticsGather). ModelInfer, ModelStreamInfer, ModelMetadata, ModelReady and
// ModelConfig are forwarded as bytes: the gateway reads the model name and version
// out of the serialized request (ScanModelTarget, no decoding), routes as the REST gateway
// does (admission against gateway.max_in_flight -> RESOURCE_EXHAUSTED; Router::Pick; no
// ready replica -> wait up to gateway.cold_start_timeout, counted as demand, then
// UNAVAILABLE), and relays the request with the client's metadata to the replica's gRPC
// port; the replica's response bytes, status and metadata come back unchanged, with
// `ferry-revision: <revision>` added to the initial metadata. The upstream call gets the
// client's deadline, capped by gateway.request_timeout for unary calls; a client that
// cancels cancels it. A call that fails UNAVAILABLE before any response message (the
// replica died, refused the connection) is sent once more, to another replica when there
// is one: a killed replica costs no client error.
// A ModelStreamInfer stream is pinned to one replica, chosen by its first request that
// names a known model; a later request for a model of another deployment, or a malformed
// one, gets an in-band error (ModelStreamInferResponse.error_message, in request order)
// and the stream goes on, as `ferry serve` answers a request it cannot serve.
// Answered by the gateway itself: ServerLive, ServerReady (every deployment whose minimum
// is above zero has a routable replica), ServerMetadata, RepositoryIndex (every model of
// every deployment), Health.Check/Watch ("" and the service name as ServerReady, each
// model name SERVING while its deployment has a routable replica); repository load and
// unload are FAILED_PRECONDITION (the engine owns the models); shared memory, tracing and
// log settings UNIMPLEMENTED.
// Threads: `threads` completion queues, each polled by its own thread, carry both the
// client-facing calls (gRPC's async generic API) and their upstream calls (generic stub on
// the same queue), so a call's every step runs on one thread, without locks. Health and
// reflection run on the same queues (frontend/grpc's shared services), and so do the
// self-answered inference methods (through the generic service: no callback-API service,
// whose polling threads would take the sockets' events from the queue threads). Upstream channels are one per
// replica (ReplicaEndpoint::grpc_channel), made on first use and shared by the threads.
// With transport "native": event loops (`threads`, one per core by default) each carry
// their client connections (frontend/grpc_native's GrpcConnection: one nghttp2 server
// session per socket) and their upstream connections (GrpcUpstreamSession: one nghttp2
// client session per loop and replica), so a call's every step runs on its loop, without
// locks; routing, admission, the max_concurrency queue, retries, deadlines, cancellation
// and metrics as above (native_forward.h).
// Thread-safety: Start, Stop and RefreshHealth are called by the owner's threads (Start
// and Stop by one; RefreshHealth from any, e.g. the control loop after each route table).
class GrpcGateway {
 public:
  // router: not owned, must outlive the gateway.
  static Result<std::unique_ptr<GrpcGateway>> Create(GrpcGatewayOptions options, Router* router);
  ~GrpcGateway();

  // Binds and starts serving; fails naming the address when the port is taken.
  Status Start();
  uint16_t port() const;
  // Marks health NOT_SERVING, stops accepting, lets calls in flight finish up to
  // grace_ms (then cancels them), and joins the threads.
  void Stop(int grace_ms);
  // Sets the health statuses from the router's current table.
  void RefreshHealth();

  struct Counters {
    uint64_t requests = 0;         // calls accepted by the forwarding path
    uint64_t retries = 0;          // upstream failures before a response message, retried
    uint64_t upstream_errors = 0;  // calls that failed at the replica after the retry
  };
  Counters counters() const;

 private:
  struct Impl;
  explicit GrpcGateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::engine
