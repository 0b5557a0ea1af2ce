#include "frontend/grpc/inference_methods.h"

#include "protocol/grpc/statistics_proto.h"

namespace ferry::frontend::grpc {
namespace g = ::grpc;

g::Status InferenceMethods::ModelMetadata(const inference::ModelMetadataRequest& req,
                                          inference::ModelMetadataResponse* resp) {
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

g::Status InferenceMethods::ModelStatistics(const inference::ModelStatisticsRequest& req,
                                            inference::ModelStatisticsResponse* resp) {
  auto stats = server_->GetStatistics(req.name(), req.version());
  if (!stats.ok()) return ToGrpc(stats.status());
  protocol::StatisticsToProto(*stats, resp);
  return g::Status::OK;
}

void InferenceMethods::RepositoryIndex(const inference::RepositoryIndexRequest& req,
                                       inference::RepositoryIndexResponse* resp) {
  for (const auto& e : server_->RepositoryIndex(req.ready())) {
    auto* m = resp->add_models();
    m->set_name(e.name);
    m->set_version(e.version);
    if (e.state != server::ModelState::kUnknown) m->set_state(std::string(server::ModelStateName(e.state)));
    m->set_reason(e.reason);
  }
}

}  // namespace ferry::frontend::grpc
