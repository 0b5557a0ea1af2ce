#include "server/server.h"

#include <optional>
#include <set>

#include "core/clock.h"
#include "core/log.h"
#include "core/request_id.h"
#include "monitoring/explain/explain_settings.h"
#include "monitoring/monitoring_hub.h"
#include "monitoring/request_sampling.h"
#include "server/request_validation.h"

namespace ferry::server {
namespace {

// The record of a request the tap wants, filled in as the request is answered, and
// what of it the tap asked for.
struct PendingRecord {
  std::unique_ptr<monitoring::InferenceRecord> record;  // from the tap's NewRecord
  bool inputs = false, outputs = false;
};

std::shared_ptr<PendingRecord> StartRecord(monitoring::InferenceTap* tap, const ModelVersion& mv,
                                           const InferRequest& request, uint64_t start_wall_ms,
                                           const monitoring::TapDemand& demand) {
  auto p = std::make_shared<PendingRecord>();
  p->inputs = demand.inputs;
  p->outputs = demand.outputs;
  // A record the tap is done with, when it keeps them: every field is assigned here or
  // in FinishRecord, into storage that already has the capacity.
  p->record = tap->NewRecord();
  monitoring::InferenceRecord& r = *p->record;
  r.model = mv.name();
  r.version = mv.version_string();
  r.request_id = request.id;
  r.frontend = request.frontend;
  r.received_wall_ms = start_wall_ms;
  r.parameters = request.parameters;
  if (p->inputs) r.inputs = request.inputs;
  else r.inputs.clear();
  r.outputs.clear();
  r.trace_parent = request.trace_parent;
  return p;
}

void FinishRecord(monitoring::InferenceTap* tap, std::shared_ptr<PendingRecord> pending, uint64_t start,
                  const Status& status, const std::vector<Tensor>* outputs) {
  if (!pending) return;
  monitoring::InferenceRecord& record = *pending->record;
  // The unary gRPC path lends its tensors from the call's request message without a
  // keepalive (the message dies with the call, once the answer is written), so a record
  // that outlives the answer must own its inputs. HTTP bodies and gRPC streams are kept
  // alive by the tensors themselves.
  if (record.frontend == Frontend::kGrpc)
    for (auto& t : record.inputs) t.Own(std::string(t.bytes()));
  record.duration_ns = NowNanos() - start;
  record.code = status.code();
  if (!status.ok()) record.error = status.message();
  else record.error.clear();
  if (outputs && pending->outputs) record.outputs = *outputs;
  tap->OfferRecord(std::move(pending->record));
}

}  // namespace

Server::Server(ServerOptions options, std::unique_ptr<runtime::RuntimeRegistry> runtimes)
    : runtimes_(std::move(runtimes)),
      models_(std::make_unique<ModelManager>(std::move(options.models), runtimes_.get(), &metrics_)),
      cache_(options.response_cache_bytes > 0 ? std::make_unique<ResponseCache>(options.response_cache_bytes) : nullptr),
      log_requests_(options.log_requests) {}

Server::~Server() { Shutdown(); }

Result<std::unique_ptr<Server>> Server::Create(ServerOptions options, std::unique_ptr<runtime::RuntimeRegistry> runtimes) {
  if (options.models.repositories.empty()) return InvalidArgument("at least one --model-repository is required");
  return std::unique_ptr<Server>(new Server(std::move(options), std::move(runtimes)));
}

Status Server::Start() {
  metrics_.SetCollectHook([this] {
    std::set<std::string> names;
    for (const auto& e : models_->Index(true)) names.insert(e.name);
    for (const auto& name : names)
      for (const auto& v : models_->ReadyVersions(name))
        metrics_.QueueDepth(v->name(), v->version_string()).Set(static_cast<double>(v->scheduler().queue_depth()));
  });
  FERRY_RETURN_IF_ERROR(models_->Start());
  ready_.store(true);
  return Status::Ok();
}

void Server::Shutdown(int grace_ms) {
  if (!ready_.exchange(false) && inflight_.closed()) return;
  if (grace_ms < 0 || !inflight_.CloseAndDrainFor(std::chrono::milliseconds(grace_ms))) {
    if (grace_ms >= 0) {
      FERRY_LOG(kWarning, "stopping the requests still in flight after the shutdown grace period", );
      abandoning_.store(true, std::memory_order_relaxed);
    }
    inflight_.CloseAndDrain();
  }
  models_->Stop();
}

std::vector<std::string> Server::Extensions() {
  return {"binary_tensor_data", "model_repository", "model_configuration", "parameters", "statistics"};
}

void Server::Infer(InferRequest request, InferCallback done) {
  const uint64_t start = NowNanos();
  // A traced request reports its spans when it is answered, whichever path answers it.
  std::shared_ptr<monitoring::TracedRequest> trace;
  if (tracer_) {
    if (auto t = tracer_->Begin(request.trace_parent)) {
      trace = std::make_shared<monitoring::TracedRequest>(std::move(*t));
      done = [tracer = tracer_, trace, model = request.model_name, version = request.model_version, id = request.id,
              frontend = request.frontend, done = std::move(done)](Result<InferResponse> r) {
        tracer->Finish(*trace, model, r.ok() ? r->model_version : version, id, FrontendName(frontend),
                       r.ok() ? Status::Ok() : r.status());
        done(std::move(r));
      };
    }
  }
  std::shared_ptr<std::string> log_version;
  if (log_requests_) {
    // The trace the request is part of: ours when traced, else the caller's, if any.
    std::string trace_id;
    if (trace) trace_id = Hex(trace->context.trace_id.data(), trace->context.trace_id.size());
    else if (request.trace_parent) trace_id = Hex(request.trace_parent->trace_id.data(), request.trace_parent->trace_id.size());
    // The version that answers, once known (set below before any answer but a lookup failure).
    log_version = std::make_shared<std::string>(request.model_version);
    done = [start, model = request.model_name, version = log_version, id = request.id, frontend = request.frontend,
            trace_id = std::move(trace_id), done = std::move(done)](Result<InferResponse> r) {
      LogFields fields;
      fields("model", model)("version", r.ok() ? r->model_version : *version)("id", id)(
          "protocol", FrontendName(frontend))("status", r.ok() ? StatusCodeName(StatusCode::kOk) : StatusCodeName(r.status().code()))(
          "duration_us", (NowNanos() - start) / 1000);
      if (!trace_id.empty()) fields("trace_id", trace_id);
      if (!r.ok()) fields("error", r.status().message());
      LogLine(LogLevel::kInfo, "request", fields);
      done(std::move(r));
    };
  }
  if (!inflight_.TryEnter()) return done(Unavailable("the server is shutting down"));
  auto handle_or = models_->Acquire(request.model_name, request.model_version);
  if (!handle_or.ok()) {
    inflight_.Leave();
    return done(handle_or.status());
  }
  // Shared so the job's completion (a copyable std::function) can hold it.
  auto handle = std::make_shared<VersionHandle>(std::move(handle_or).value());
  ModelVersion& mv = **handle;
  if (log_version) *log_version = mv.version_string();
  const Frontend frontend = request.frontend;
  monitoring::ModelVersionMetrics& version_metrics = mv.metrics();
  monitoring::FrontendMetrics& metrics = version_metrics.For(frontend);
  std::shared_ptr<PendingRecord> record;
  // Kept for OfferRows (it holds the tap's handle on the version).
  monitoring::TapDemand demand = tap_ ? tap_->Demand(mv.name(), mv.version_string()) : monitoring::TapDemand{};
  if (demand.wanted) {
    // Every request of a monitored model has an id (answered to the client), sampled or not.
    if (request.id.empty()) request.id = NewRequestId();
    // Outside the sample of every consumer that wants it: no record to build and drop.
    if (monitoring::Sampled(request.id, demand.sample_rate)) record = StartRecord(tap_, mv, request, WallMillis(), demand);
  }
  auto validated = ValidateRequest(mv.config(), &request);
  if (!validated.ok()) {
    version_metrics.Failure(validated.status().code(), frontend);
    mv.statistics().RecordFailure(NowNanos() - start, WallMillis());
    FinishRecord(tap_, std::move(record), start, validated.status(), nullptr);
    handle.reset();
    inflight_.Leave();
    return done(validated.status());
  }
  // Validation may have converted inputs (e.g. reshaped them): the record keeps what the model sees.
  if (record && record->inputs) record->record->inputs = request.inputs;
  // The inputs as the model sees them, for an annotator of the answer and for the
  // monitoring rows of a successful answer (reference-counted copies, no bytes copied);
  // empty when neither wants them.
  const bool annotate = annotator_ && annotator_->Annotates(mv.name(), mv.version_string());
  const bool stage_rows = demand.rows;
  std::vector<Tensor> kept_inputs;
  if (annotate || stage_rows) kept_inputs = request.inputs;
  // The response cache, for models that enable it: a hit answers here, at once.
  std::optional<ResponseCache::Key> cache_key;
  if (cache_ && mv.config().response_cache().enable()) {
    const uint64_t t0 = NowNanos();
    cache_key = ResponseCache::MakeKey(mv.load_id(), request.inputs, validated->output_names);
    if (auto hit = cache_->Lookup(*cache_key)) {
      const uint64_t now = NowNanos();
      version_metrics.cache_hits->Increment();
      metrics.success->Increment();
      metrics.request->Observe(static_cast<double>(now - start) / 1e9);
      mv.statistics().RecordCacheHit(now - start, now - t0, WallMillis());
      InferResponse resp;
      resp.model_name = mv.name();
      resp.model_version = mv.version_string();
      resp.id = std::move(request.id);
      resp.outputs = std::move(*hit);
      if (annotate) annotator_->Annotate(resp.model_name, resp.model_version, kept_inputs, &resp.parameters);
      if (stage_rows) tap_->OfferRows(demand, kept_inputs, resp.outputs);
      FinishRecord(tap_, std::move(record), start, Status::Ok(), &resp.outputs);
      handle.reset();
      inflight_.Leave();
      return done(std::move(resp));
    }
    version_metrics.cache_misses->Increment();
    mv.statistics().RecordCacheMiss(NowNanos() - t0);
  }
  metrics.inflight->Increment();

  // Shared so a rejected submission can still answer through it.
  auto reply = std::make_shared<InferCallback>(std::move(done));
  scheduler::Job job;
  job.inputs = std::move(request.inputs);
  job.outputs = validated->output_names;
  job.batch_size = validated->batch_size;
  job.priority = validated->priority;
  job.timeout_us = validated->timeout_us;
  job.may_run_inline = request.may_run_inline;
  // Unwanted once the client has gone, or once shutdown abandons what is left.
  job.cancelled = [this, client_gone = std::move(request.cancelled)] {
    return abandoning_.load(std::memory_order_relaxed) || (client_gone && client_gone());
  };
  job.done = [this, handle, start, frontend, batch = validated->batch_size, id = std::move(request.id), reply,
              cache_key, trace, record, annotate, stage_rows, rows_demand = std::move(demand), kept_inputs = std::move(kept_inputs)](Result<std::vector<Tensor>> outputs, const scheduler::JobReport& report) mutable {
    ModelVersion& v = **handle;
    if (trace) {
      trace->queue_ns = report.queue_ns;
      trace->compute_input_ns = report.timings.compute_input_ns;
      trace->compute_infer_ns = report.timings.compute_infer_ns;
      trace->compute_output_ns = report.timings.compute_output_ns;
      trace->batch_size = batch;
      trace->executed_batch_size = report.executed_batch_size;
    }
    monitoring::FrontendMetrics& m = v.metrics().For(frontend);
    const runtime::ExecTimings& t = report.timings;
    m.inflight->Decrement();
    m.queue->Observe(static_cast<double>(report.queue_ns) / 1e9);
    const uint64_t request_ns = NowNanos() - start;
    if (!outputs.ok()) {
      v.metrics().Failure(outputs.status().code(), frontend);
      v.statistics().RecordFailure(request_ns, WallMillis());
      FinishRecord(tap_, std::move(record), start, outputs.status(), nullptr);
      (*reply)(outputs.status());
    } else {
      m.compute_input->Observe(static_cast<double>(t.compute_input_ns) / 1e9);
      m.compute_infer->Observe(static_cast<double>(t.compute_infer_ns) / 1e9);
      m.compute_output->Observe(static_cast<double>(t.compute_output_ns) / 1e9);
      // A batch counts as one execution, reported by its first request.
      if (report.counts_execution) {
        m.execution_count->Increment();
        if (report.ran_inline) m.inline_executions->Increment();
        m.batch_size->Observe(static_cast<double>(report.executed_batch_size));
      }
      m.inference_count->Increment(static_cast<double>(batch));
      InferResponse resp;
      resp.model_name = v.name();
      resp.model_version = v.version_string();
      resp.id = std::move(id);
      resp.outputs = std::move(outputs).value();
      for (auto& o : resp.outputs) ApplyOutputReshape(v.config(), batch, &o);
      if (cache_key) cache_->Insert(*cache_key, resp.outputs);
      if (annotate) annotator_->Annotate(resp.model_name, resp.model_version, kept_inputs, &resp.parameters);
      if (stage_rows) tap_->OfferRows(rows_demand, kept_inputs, resp.outputs);
      m.success->Increment();
      m.request->Observe(static_cast<double>(request_ns) / 1e9);
      v.statistics().RecordSuccess({static_cast<uint64_t>(batch), report.queue_ns, t.compute_input_ns,
                                    t.compute_infer_ns, t.compute_output_ns, request_ns, WallMillis(),
                                    report.counts_execution, static_cast<uint64_t>(report.executed_batch_size)});
      FinishRecord(tap_, std::move(record), start, Status::Ok(), &resp.outputs);
      (*reply)(std::move(resp));
    }
    handle.reset();
    inflight_.Leave();
  };
  if (trace) {
    trace->submitted = true;
    trace->submit_mono = NowNanos();
  }
  Status submitted = mv.scheduler().Submit(std::move(job));
  if (!submitted.ok()) {
    metrics.inflight->Decrement();
    version_metrics.Failure(submitted.code(), frontend);
    FinishRecord(tap_, std::move(record), start, submitted, nullptr);
    handle.reset();
    inflight_.Leave();
    (*reply)(submitted);
  }
}

void Server::CountFailure(std::string_view model, std::string_view version, const Status& error, Frontend frontend,
                          std::string_view id) {
  auto h = models_->Acquire(model, version);
  if (!h.ok()) return;
  ModelVersion& mv = **h;
  mv.metrics().Failure(error.code(), frontend);
  mv.statistics().RecordFailure(0, WallMillis());
  if (tap_ && tap_->Wants(mv.name(), mv.version_string())) {
    monitoring::InferenceRecord r;
    r.request_id = id.empty() ? NewRequestId() : std::string(id);
    if (!monitoring::Sampled(r.request_id, tap_->Demand(mv.name(), mv.version_string()).sample_rate)) return;
    r.model = mv.name();
    r.version = mv.version_string();
    r.frontend = frontend;
    r.received_wall_ms = WallMillis();
    r.code = error.code();
    r.error = error.message();
    tap_->Offer(std::move(r));
  }
}

void Server::SetMonitoringHub(monitoring::MonitoringHub* hub, MonitoringDefaults defaults) {
  tap_ = hub;
  monitoring_defaults_ = defaults;
  // Explanations read monitoring.explain.* themselves; a bad one is reported at load,
  // with the hub's findings, and again by each explain request.
  hub->AcceptSettings("explain");
  models_->SetVersionListener([hub, defaults = std::move(defaults)](const std::string& model, int64_t version,
                                                                     const std::filesystem::path& dir,
                                                                     const inference::ModelConfig* config) {
    if (!config) {
      hub->VersionGone(model, std::to_string(version));
      return Status::Ok();
    }
    const monitoring::MonitoredModel monitored = MonitoredModelFor(model, version, dir, *config, defaults);
    Status hub_status = hub->VersionReady(monitored);
    auto explain = monitoring::explain::ParseExplainSettings(monitored.settings, dir);
    if (explain.ok()) return hub_status;
    if (hub_status.ok())
      return InvalidArgument("model '" + model + "' version " + std::to_string(version) + ": monitoring: " +
                             explain.status().message());
    return InvalidArgument(hub_status.message() + "; " + explain.status().message());
  });
}

Result<std::vector<StatisticsSnapshot>> Server::GetStatistics(std::string_view model, std::string_view version) const {
  std::vector<StatisticsSnapshot> out;
  auto add = [&out](const ModelVersion& v) { out.push_back(v.statistics().Snapshot(v.name(), v.version_string())); };
  if (model.empty()) {
    std::set<std::string> names;
    for (const auto& e : models_->Index(true)) names.insert(e.name);
    for (const auto& name : names)
      for (const auto& v : models_->ReadyVersions(name)) add(*v);
    return out;
  }
  // Acquire gives the precise error for unknown models, versions and bad version strings.
  FERRY_ASSIGN_OR_RETURN(auto handle, models_->Acquire(model, version));
  if (!version.empty()) {
    add(*handle);
    return out;
  }
  for (const auto& v : models_->ReadyVersions(model)) add(*v);
  return out;
}

Result<bool> Server::ModelReady(std::string_view model, std::string_view version) const {
  auto h = models_->Acquire(model, version);
  if (h.ok()) return true;
  if (h.status().code() == StatusCode::kUnavailable) return false;
  return h.status();
}

Result<std::string> Server::MonitoringJson(std::string_view model, std::string_view version) const {
  FERRY_ASSIGN_OR_RETURN(auto h, models_->Acquire(model, version));
  if (!monitoring_report_)
    return NotFound("model '" + std::string(model) + "' is not monitored (set monitoring.drift.enabled)");
  return monitoring_report_(model, version);
}

Result<Server::FeedbackAnswer> Server::Feedback(std::string_view model, std::string_view version,
                                                std::string_view body) const {
  FERRY_ASSIGN_OR_RETURN(auto h, models_->Acquire(model, version));
  if (!feedback_handler_)
    return InvalidArgument("model '" + std::string(model) + "' has no feedback monitoring (set monitoring.feedback.enabled)");
  return feedback_handler_(model, version, body);
}

Result<inference::ModelConfig> Server::GetModelConfig(std::string_view model, std::string_view version) const {
  FERRY_ASSIGN_OR_RETURN(auto h, models_->Acquire(model, version));
  return h->config();
}

Result<ModelMetadata> Server::GetModelMetadata(std::string_view model, std::string_view version) const {
  FERRY_ASSIGN_OR_RETURN(auto h, models_->Acquire(model, version));
  ModelMetadata md;
  md.name = h->name();
  md.platform = h->platform();
  if (!version.empty()) {
    md.versions.push_back(h->version_string());
  } else {
    for (const auto& v : models_->ReadyVersions(model)) md.versions.push_back(v->version_string());
  }
  const auto& c = h->config();
  auto add = [&c](const auto& list, std::vector<TensorMetadata>* out) {
    for (const auto& t : list) {
      TensorMetadata tm{t.name(), static_cast<DataType>(t.data_type()), {}};
      if (c.max_batch_size() > 0) tm.shape.push_back(-1);
      tm.shape.insert(tm.shape.end(), t.dims().begin(), t.dims().end());
      out->push_back(std::move(tm));
    }
  };
  add(c.input(), &md.inputs);
  add(c.output(), &md.outputs);
  return md;
}

}  // namespace ferry::server
