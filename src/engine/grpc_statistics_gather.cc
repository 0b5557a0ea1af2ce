#include "engine/grpc_statistics_gather.h"

#include "engine/grpc_forward_policy.h"

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
  std::vector<StatisticsAnswer> answers;
  for (auto& u : up_) {
    StatisticsAnswer& a = answers.emplace_back();
    a.ep = u->ep.get();
    a.code = static_cast<int>(u->status.error_code());
    a.message = u->status.error_message();
    std::vector<g::Slice> slices;
    if (u->status.ok() && u->out.Dump(&slices).ok())
      for (const auto& s : slices) a.bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  std::string out;
  const StatisticsSum sum = SumStatistics(deployment_, answers, &out);
  if (sum.own >= 0) return done_(up_[sum.own]->status, {});
  if (sum.code != 0) return done_(g::Status(static_cast<g::StatusCode>(sum.code), sum.message), {});
  g::Slice slice(out);
  done_(g::Status::OK, g::ByteBuffer(&slice, 1));
}

}  // namespace ferry::engine::grpc_forward
