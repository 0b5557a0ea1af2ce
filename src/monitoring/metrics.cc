#include "monitoring/metrics.h"

#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>

namespace ferry::monitoring {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// 50 µs to 60 s: covers a tiny model's request on one core up to a slow batch.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                            0.01,    0.025,  0.05,    0.1,    0.25,  0.5,   1,
                                                            2.5,     5,      10,      30,     60};
  return b;
}

const prometheus::Histogram::BucketBoundaries& BatchBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  return b;
}

std::string ReasonLabel(StatusCode code) {
  std::string s(StatusCodeName(code));
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      success_(BuildCounter().Name("ferry_inference_requests_total")
                   .Help("Successful inference requests (nv_inference_request_success)").Register(*registry_)),
      failure_(BuildCounter().Name("ferry_inference_failures_total")
                   .Help("Failed inference requests by reason (nv_inference_request_failure)").Register(*registry_)),
      inference_count_(BuildCounter().Name("ferry_inference_count_total")
                           .Help("Inferences performed; a batch of N counts N (nv_inference_count)").Register(*registry_)),
      execution_count_(BuildCounter().Name("ferry_inference_executions_total")
                           .Help("Model executions; a batch counts once (nv_inference_exec_count)").Register(*registry_)),
      inline_executions_(BuildCounter().Name("ferry_inline_executions_total")
                             .Help("Model executions run on the IO thread that received the request (tiny models)")
                             .Register(*registry_)),
      request_(BuildHistogram().Name("ferry_request_duration_seconds")
                   .Help("End-to-end request time inside the server, decode to encode").Register(*registry_)),
      queue_(BuildHistogram().Name("ferry_queue_duration_seconds")
                 .Help("Time requests wait for an execution instance").Register(*registry_)),
      compute_input_(BuildHistogram().Name("ferry_compute_input_duration_seconds")
                         .Help("Time preparing input tensors for the runtime").Register(*registry_)),
      compute_infer_(BuildHistogram().Name("ferry_compute_infer_duration_seconds")
                         .Help("Time the runtime spends executing the model").Register(*registry_)),
      compute_output_(BuildHistogram().Name("ferry_compute_output_duration_seconds")
                          .Help("Time collecting output tensors from the runtime").Register(*registry_)),
      inflight_(BuildGauge().Name("ferry_inflight_requests")
                    .Help("Requests accepted and not yet answered (nv_inference_pending_request_count)").Register(*registry_)),
      batch_size_(BuildHistogram().Name("ferry_batch_size")
                      .Help("Rows per model execution (dynamic batching joins requests)").Register(*registry_)),
      queue_depth_(BuildGauge().Name("ferry_queue_depth")
                       .Help("Requests waiting in the model version's scheduler queue").Register(*registry_)),
      cache_hits_(BuildCounter().Name("ferry_cache_hits_total")
                      .Help("Requests answered from the response cache (nv_cache_num_hits_per_model)").Register(*registry_)),
      cache_misses_(BuildCounter().Name("ferry_cache_misses_total")
                        .Help("Response cache lookups that found nothing (nv_cache_num_misses_per_model)").Register(*registry_)),
      loads_(BuildCounter().Name("ferry_model_loads_total").Help("Model load attempts by result").Register(*registry_)),
      unloads_(BuildCounter().Name("ferry_model_unloads_total").Help("Model unloads").Register(*registry_)),
      load_duration_(BuildHistogram().Name("ferry_model_load_duration_seconds")
                         .Help("Time to load a model (all its versions)").Register(*registry_)),
      grpc_calls_(BuildCounter().Name("ferry_grpc_requests_total")
                      .Help("Finished gRPC calls by method and status code").Register(*registry_)),
      trace_spans_(BuildCounter().Name("ferry_trace_spans_total")
                       .Help("OpenTelemetry spans by outcome: exported, dropped (queue full), failed (receiver)")
                       .Register(*registry_)),
      spans_exported_(trace_spans_.Add({{"result", "exported"}})),
      spans_dropped_(trace_spans_.Add({{"result", "dropped"}})),
      spans_failed_(trace_spans_.Add({{"result", "failed"}})),
      rss_(BuildGauge().Name("process_resident_memory_bytes").Help("Resident memory size in bytes").Register(*registry_).Add({})),
      vms_(BuildGauge().Name("process_virtual_memory_bytes").Help("Virtual memory size in bytes").Register(*registry_).Add({})),
      cpu_(BuildCounter().Name("process_cpu_seconds_total").Help("User and system CPU time in seconds").Register(*registry_).Add({})),
      start_time_(BuildGauge().Name("process_start_time_seconds").Help("Start time since the Unix epoch in seconds")
                      .Register(*registry_).Add({})),
      threads_(BuildGauge().Name("process_threads").Help("Number of OS threads").Register(*registry_).Add({})) {
  start_time_.Set(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::shared_ptr<ModelVersionMetrics> Metrics::ForVersion(const std::string& model, const std::string& version) {
  auto m = std::make_shared<ModelVersionMetrics>();
  for (int f = 0; f < kFrontendCount; ++f) {
    prometheus::Labels l{{"model", model},
                         {"version", version},
                         {"protocol", std::string(FrontendName(static_cast<Frontend>(f)))}};
    FrontendMetrics& fm = m->by_frontend[f];
    fm.success = &success_.Add(l);
    fm.inference_count = &inference_count_.Add(l);
    fm.execution_count = &execution_count_.Add(l);
    fm.inline_executions = &inline_executions_.Add(l);
    fm.request = &request_.Add(l, LatencyBuckets());
    fm.queue = &queue_.Add(l, LatencyBuckets());
    fm.compute_input = &compute_input_.Add(l, LatencyBuckets());
    fm.compute_infer = &compute_infer_.Add(l, LatencyBuckets());
    fm.compute_output = &compute_output_.Add(l, LatencyBuckets());
    fm.inflight = &inflight_.Add(l);
    fm.batch_size = &batch_size_.Add(l, BatchBuckets());
    // The failure reasons the shipped rules read start at 0, so that rate() and increase()
    // see a version's first failures (a series that appears at 1 counts nothing).
    for (StatusCode code : {StatusCode::kInvalidArgument, StatusCode::kInternal, StatusCode::kUnavailable,
                            StatusCode::kOverloaded, StatusCode::kResourceExhausted, StatusCode::kDeadlineExceeded,
                            StatusCode::kCancelled}) {
      prometheus::Labels with_reason = l;
      with_reason.emplace("reason", ReasonLabel(code));
      failure_.Add(with_reason);
    }
  }
  m->cache_hits = &cache_hits_.Add({{"model", model}, {"version", version}});
  m->cache_misses = &cache_misses_.Add({{"model", model}, {"version", version}});
  m->owner = this;
  m->model = model;
  m->version = version;
  return m;
}

void ModelVersionMetrics::Failure(StatusCode code, Frontend frontend) {
  owner->failure_
      .Add({{"model", model},
            {"version", version},
            {"protocol", std::string(FrontendName(frontend))},
            {"reason", ReasonLabel(code)}})
      .Increment();
}

prometheus::Gauge& Metrics::QueueDepth(const std::string& model, const std::string& version) {
  return queue_depth_.Add({{"model", model}, {"version", version}});
}

void Metrics::SetCollectHook(std::function<void()> hook) {
  std::lock_guard lock(hook_mu_);
  collect_hook_ = std::move(hook);
}

void Metrics::TraceSpans(const char* result, uint64_t n) {
  const std::string_view r(result);
  prometheus::Counter& c = r == "exported" ? spans_exported_ : r == "dropped" ? spans_dropped_ : spans_failed_;
  c.Increment(static_cast<double>(n));
}

prometheus::Counter& Metrics::GrpcCalls(const std::string& method, const std::string& code) {
  return grpc_calls_.Add({{"method", method}, {"code", code}});
}

void Metrics::ModelLoaded(const std::string& model, bool success, double seconds) {
  // Both results exist from a model's first load on (the other one at 0).
  loads_.Add({{"model", model}, {"result", success ? "failure" : "success"}});
  loads_.Add({{"model", model}, {"result", success ? "success" : "failure"}}).Increment();
  if (success) load_duration_.Add({{"model", model}}, LatencyBuckets()).Observe(seconds);
}

void Metrics::ModelUnloaded(const std::string& model) { unloads_.Add({{"model", model}}).Increment(); }

void Metrics::RefreshProcessMetrics() {
  // /proc/self/stat: fields 14/15 utime/stime (ticks), 20 threads, 23 vsize, 24 rss (pages).
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream rest(stat.substr(close + 2));
  std::vector<std::string> f((std::istream_iterator<std::string>(rest)), std::istream_iterator<std::string>());
  if (f.size() < 22) return;
  // f[0] is field 3 (state).
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  {
    // A counter, as Prometheus client libraries export it: it moves by what /proc adds
    // (scrapes and alert evaluations refresh at once, hence the lock).
    std::lock_guard lock(cpu_mu_);
    const double delta = (std::stod(f[11]) + std::stod(f[12])) / ticks - cpu_.Value();
    if (delta > 0) cpu_.Increment(delta);
  }
  threads_.Set(std::stod(f[17]));
  vms_.Set(std::stod(f[20]));
  rss_.Set(std::stod(f[21]) * static_cast<double>(sysconf(_SC_PAGESIZE)));
}

std::string Metrics::Serialize() {
  RefreshProcessMetrics();
  {
    std::lock_guard lock(hook_mu_);
    if (collect_hook_) collect_hook_();
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace ferry::monitoring
