#include "server/statistics.h"

namespace ferry::server {

void VersionStatistics::RecordSuccess(const Execution& e) {
  last_inference_ms_.store(e.wall_ms, std::memory_order_relaxed);
  inference_count_.fetch_add(e.batch_size, std::memory_order_relaxed);
  success_.Add(e.request_ns);
  queue_.Add(e.queue_ns);
  compute_input_.Add(e.compute_input_ns);
  compute_infer_.Add(e.compute_infer_ns);
  compute_output_.Add(e.compute_output_ns);
  if (!e.counts_execution) return;
  execution_count_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t size = e.executed_batch_size ? e.executed_batch_size : e.batch_size;
  std::lock_guard lock(batch_mu_);
  BatchStatistics& b = batches_[size];
  b.batch_size = size;
  b.compute_input.count++;
  b.compute_input.ns += e.compute_input_ns;
  b.compute_infer.count++;
  b.compute_infer.ns += e.compute_infer_ns;
  b.compute_output.count++;
  b.compute_output.ns += e.compute_output_ns;
}

void VersionStatistics::RecordFailure(uint64_t request_ns, uint64_t wall_ms) {
  last_inference_ms_.store(wall_ms, std::memory_order_relaxed);
  fail_.Add(request_ns);
}

void VersionStatistics::RecordCacheHit(uint64_t request_ns, uint64_t lookup_ns, uint64_t wall_ms) {
  last_inference_ms_.store(wall_ms, std::memory_order_relaxed);
  success_.Add(request_ns);
  queue_.Add(0);
  cache_hit_.Add(lookup_ns);
}

void VersionStatistics::RecordCacheMiss(uint64_t lookup_ns) { cache_miss_.Add(lookup_ns); }

StatisticsSnapshot VersionStatistics::Snapshot(const std::string& name, const std::string& version) const {
  StatisticsSnapshot s;
  s.name = name;
  s.version = version;
  s.last_inference_ms = last_inference_ms_.load(std::memory_order_relaxed);
  s.inference_count = inference_count_.load(std::memory_order_relaxed);
  s.execution_count = execution_count_.load(std::memory_order_relaxed);
  s.success = success_.Load();
  s.fail = fail_.Load();
  s.queue = queue_.Load();
  s.compute_input = compute_input_.Load();
  s.compute_infer = compute_infer_.Load();
  s.compute_output = compute_output_.Load();
  s.cache_hit = cache_hit_.Load();
  s.cache_miss = cache_miss_.Load();
  std::lock_guard lock(batch_mu_);
  for (const auto& [size, b] : batches_) s.batches.push_back(b);
  return s;
}

}  // namespace ferry::server
