#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/grpc_forward.h"
#include "engine/router.h"

// Internal to the gRPC gateway: its answer to ModelStatistics.
namespace ferry::engine::grpc_forward {

// The gRPC gateway's ModelStatistics: the client's request sent to every given replica at
// once, and their answers summed (protocol::MergeStatistics), so a deployment's statistics
// count every replica's requests - as the REST gateway's GatherStatistics does for
// GET .../stats. `done` gets OK and the summed ModelStatisticsResponse; a replica's own
// error as it is (NOT_FOUND for an unknown version, ...); UNAVAILABLE naming the replica
// that failed to answer by `deadline` or sent something that is not a statistics message.
// Threads: every event comes back on `cq`, polled by one thread; `done` runs there, once,
// after which the gather frees itself. Cancel() must be called on that thread too.
class StatisticsGather final : public TagHandler {
 public:
  using Done = std::function<void(::grpc::Status, ::grpc::ByteBuffer)>;

  // REQUIRES: `replicas` is not empty; `core` outlives the gather.
  static StatisticsGather* Start(const ForwardCore& core, ::grpc::CompletionQueue* cq, const std::string& method,
                                 const ::grpc::ByteBuffer& request,
                                 std::vector<std::shared_ptr<ReplicaEndpoint>> replicas,
                                 std::chrono::system_clock::time_point deadline, std::string deployment, Done done);
  // The client left: ends every call still out; `done` still runs once they are back.
  void Cancel();

  void OnEvent(int op, bool ok) override;

 private:
  struct Upstream;
  StatisticsGather(std::vector<std::shared_ptr<ReplicaEndpoint>> replicas, std::string deployment, Done done);
  ~StatisticsGather() override;
  void Answer();

  std::vector<std::unique_ptr<Upstream>> up_;
  size_t pending_ = 0;
  std::string deployment_;
  Done done_;
};

}  // namespace ferry::engine::grpc_forward
