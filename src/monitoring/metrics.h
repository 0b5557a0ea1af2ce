#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/infer_request.h"
#include "core/status.h"

// Prometheus metrics for the server, exported in the text format on the metrics port.
// Names and their Triton equivalents are listed in docs/metrics.md.
namespace ferry::monitoring {

// The metric handles of one model version and frontend, resolved once at load so the
// request path only touches atomics and per-histogram locks.
// Thread-safety: every member is safe to update from any thread.
struct FrontendMetrics {
  prometheus::Counter* success = nullptr;
  prometheus::Counter* inference_count = nullptr;
  prometheus::Counter* execution_count = nullptr;
  prometheus::Histogram* request = nullptr;
  prometheus::Histogram* queue = nullptr;
  prometheus::Histogram* compute_input = nullptr;
  prometheus::Histogram* compute_infer = nullptr;
  prometheus::Histogram* compute_output = nullptr;
  prometheus::Gauge* inflight = nullptr;
  prometheus::Histogram* batch_size = nullptr;  // rows per execution
  // Executions run on the thread that received the request (inline execution).
  prometheus::Counter* inline_executions = nullptr;
};

// Every frontend's handles for one model version.
struct ModelVersionMetrics {
  FrontendMetrics by_frontend[kFrontendCount];
  FrontendMetrics& For(Frontend f) { return by_frontend[static_cast<int>(f)]; }
  prometheus::Counter* cache_hits = nullptr;
  prometheus::Counter* cache_misses = nullptr;

  // Failure counters are looked up by reason on the (rare) error path.
  class Metrics* owner = nullptr;
  std::string model, version;
  void Failure(StatusCode code, Frontend frontend);
};

// Owns the registry and every metric family.
// Thread-safety: all methods are thread-safe.
class Metrics {
 public:
  Metrics();

  // Handles for one model version (created on first use, shared afterwards).
  std::shared_ptr<ModelVersionMetrics> ForVersion(const std::string& model, const std::string& version);

  void ModelLoaded(const std::string& model, bool success, double seconds);
  void ModelUnloaded(const std::string& model);

  // Requests waiting in a model version's queue, refreshed by the collect hook.
  prometheus::Gauge& QueueDepth(const std::string& model, const std::string& version);
  // Runs before every Serialize (e.g. to refresh gauges that are read, not pushed).
  void SetCollectHook(std::function<void()> hook);

  // The counter of finished gRPC calls of `method` (full name) with status `code` (its
  // name). Callers keep it: the lookup builds a label map and takes the family's lock.
  prometheus::Counter& GrpcCalls(const std::string& method, const std::string& code);
  // Trace spans by what became of them: "exported", "dropped" (the exporter's queue was
  // full) or "failed" (the receiver refused them or could not be reached).
  void TraceSpans(const char* result, uint64_t n);

  // The whole registry in Prometheus text format, with process metrics refreshed.
  std::string Serialize();
  // The registry itself, for parts that own their metric families (monitoring's hub and
  // consumers); whatever they register is served with the rest.
  prometheus::Registry* registry() { return registry_.get(); }

 private:
  friend struct ModelVersionMetrics;
  void RefreshProcessMetrics();

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& success_;
  prometheus::Family<prometheus::Counter>& failure_;
  prometheus::Family<prometheus::Counter>& inference_count_;
  prometheus::Family<prometheus::Counter>& execution_count_;
  prometheus::Family<prometheus::Counter>& inline_executions_;
  prometheus::Family<prometheus::Histogram>& request_;
  prometheus::Family<prometheus::Histogram>& queue_;
  prometheus::Family<prometheus::Histogram>& compute_input_;
  prometheus::Family<prometheus::Histogram>& compute_infer_;
  prometheus::Family<prometheus::Histogram>& compute_output_;
  prometheus::Family<prometheus::Gauge>& inflight_;
  prometheus::Family<prometheus::Histogram>& batch_size_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Counter>& cache_hits_;
  prometheus::Family<prometheus::Counter>& cache_misses_;
  prometheus::Family<prometheus::Counter>& loads_;
  prometheus::Family<prometheus::Counter>& unloads_;
  prometheus::Family<prometheus::Histogram>& load_duration_;
  prometheus::Family<prometheus::Counter>& grpc_calls_;
  prometheus::Family<prometheus::Counter>& trace_spans_;
  prometheus::Counter& spans_exported_;
  prometheus::Counter& spans_dropped_;
  prometheus::Counter& spans_failed_;
  std::mutex hook_mu_;
  std::function<void()> collect_hook_;  // guarded by hook_mu_
  prometheus::Gauge& rss_;
  prometheus::Gauge& vms_;
  std::mutex cpu_mu_;        // serialises the read-then-add of cpu_
  prometheus::Counter& cpu_;  // moved up to /proc's value at each refresh
  prometheus::Gauge& start_time_;
  prometheus::Gauge& threads_;
};

}  // namespace ferry::monitoring
