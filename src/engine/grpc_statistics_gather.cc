#include "engine/grpc_statistics_gather.h"

#include "protocol/grpc/statistics_proto.h"

namespace ferry::engine::grpc_forward {
namespace g = ::grpc;

struct StatisticsGather::Upstream {
  std::shared_ptr<ReplicaEndpoint> ep;
  g::ClientContext ctx;
  std::unique_ptr<g::GenericClientAsyncResponseReader> call;
  g::ByteBuffer out;
  g::Status status;
  Tag tag;
};

StatisticsGather::StatisticsGather(std::vector<std::shared_ptr<ReplicaEndpoint>> replicas, std::string deployment,
                                   Done done)
    : deployment_(std::move(deployment)), done_(std::move(done)) {
  for (size_t i = 0; i < replicas.size(); ++i) {
    auto u = std::make_unique<Upstream>();
    u->ep = std::move(replicas[i]);
    u->tag = {this, static_cast<int>(i)};
    up_.push_back(std::move(u));
  }
}

StatisticsGather::~StatisticsGather() = default;

StatisticsGather* StatisticsGather::Start(const ForwardCore& core, g::CompletionQueue* cq, const std::string& method,
                                          const g::ByteBuffer& request,
                                          std::vector<std::shared_ptr<ReplicaEndpoint>> replicas,
                                          std::chrono::system_clock::time_point deadline, std::string deployment,
                                          Done done) {
  auto* gather = new StatisticsGather(std::move(replicas), std::move(deployment), std::move(done));
  gather->pending_ = gather->up_.size();
  for (auto& u : gather->up_) {
    u->ctx.set_deadline(deadline);
    g::GenericStub stub(ChannelTo(core, *u->ep));
    u->call = stub.PrepareUnaryCall(&u->ctx, method, request, cq);
    u->call->StartCall();
    u->call->Finish(&u->out, &u->status, &u->tag);
  }
  return gather;
}

void StatisticsGather::Cancel() {
  for (auto& u : up_) u->ctx.TryCancel();
}

void StatisticsGather::OnEvent(int /*op*/, bool /*ok*/) {
  if (--pending_ > 0) return;
  Answer();
  delete this;
}

void StatisticsGather::Answer() {
  std::vector<std::vector<protocol::StatisticsSnapshot>> parts;
  for (auto& u : up_) {
    const g::StatusCode code = u->status.error_code();
    if (code == g::StatusCode::UNAVAILABLE || code == g::StatusCode::DEADLINE_EXCEEDED)
      return done_(g::Status(g::StatusCode::UNAVAILABLE, "deployment '" + deployment_ + "': replica " + u->ep->id +
                                                              " did not answer the statistics request: " +
                                                              u->status.error_message()),
                   {});
    if (!u->status.ok()) return done_(u->status, {});  // the replica's own answer, as it is
    inference::ModelStatisticsResponse part;
    std::vector<g::Slice> slices;
    std::string bytes;
    if (u->out.Dump(&slices).ok())
      for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    if (!part.ParseFromString(bytes))
      return done_(g::Status(g::StatusCode::UNAVAILABLE, "deployment '" + deployment_ + "': replica " + u->ep->id +
                                                              " answered something that is not a ModelStatisticsResponse"),
                   {});
    parts.push_back(protocol::StatisticsFromProto(part));
  }
  inference::ModelStatisticsResponse sum;
  protocol::StatisticsToProto(protocol::MergeStatistics(parts), &sum);
  const std::string out = sum.SerializeAsString();
  g::Slice slice(out);
  done_(g::Status::OK, g::ByteBuffer(&slice, 1));
}

}  // namespace ferry::engine::grpc_forward
