#include "protocol/grpc/statistics_proto.h"

namespace ferry::protocol {
namespace {

void Set(inference::StatisticDuration* d, const Duration& from) {
  d->set_count(from.count);
  d->set_ns(from.ns);
}

Duration Get(const inference::StatisticDuration& d) { return {d.count(), d.ns()}; }

}  // namespace

void StatisticsToProto(const std::vector<StatisticsSnapshot>& stats, inference::ModelStatisticsResponse* out) {
  for (const auto& s : stats) {
    auto* m = out->add_model_stats();
    m->set_name(s.name);
    m->set_version(s.version);
    m->set_last_inference(s.last_inference_ms);
    m->set_inference_count(s.inference_count);
    m->set_execution_count(s.execution_count);
    auto* is = m->mutable_inference_stats();
    Set(is->mutable_success(), s.success);
    Set(is->mutable_fail(), s.fail);
    Set(is->mutable_queue(), s.queue);
    Set(is->mutable_compute_input(), s.compute_input);
    Set(is->mutable_compute_infer(), s.compute_infer);
    Set(is->mutable_compute_output(), s.compute_output);
    Set(is->mutable_cache_hit(), s.cache_hit);
    Set(is->mutable_cache_miss(), s.cache_miss);
    for (const auto& b : s.batches) {
      auto* bs = m->add_batch_stats();
      bs->set_batch_size(b.batch_size);
      Set(bs->mutable_compute_input(), b.compute_input);
      Set(bs->mutable_compute_infer(), b.compute_infer);
      Set(bs->mutable_compute_output(), b.compute_output);
    }
  }
}

std::vector<StatisticsSnapshot> StatisticsFromProto(const inference::ModelStatisticsResponse& in) {
  std::vector<StatisticsSnapshot> out;
  out.reserve(static_cast<size_t>(in.model_stats_size()));
  for (const auto& m : in.model_stats()) {
    StatisticsSnapshot s;
    s.name = m.name();
    s.version = m.version();
    s.last_inference_ms = m.last_inference();
    s.inference_count = m.inference_count();
    s.execution_count = m.execution_count();
    const auto& is = m.inference_stats();
    s.success = Get(is.success());
    s.fail = Get(is.fail());
    s.queue = Get(is.queue());
    s.compute_input = Get(is.compute_input());
    s.compute_infer = Get(is.compute_infer());
    s.compute_output = Get(is.compute_output());
    s.cache_hit = Get(is.cache_hit());
    s.cache_miss = Get(is.cache_miss());
    for (const auto& b : m.batch_stats())
      s.batches.push_back({b.batch_size(), Get(b.compute_input()), Get(b.compute_infer()), Get(b.compute_output())});
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ferry::protocol
