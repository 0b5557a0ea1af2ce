#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/gate.h"
#include "core/infer_request.h"
#include "monitoring/inference_tap.h"
#include "monitoring/metrics.h"
#include "monitoring/request_tracer.h"
#include "monitoring/response_annotator.h"
#include "repository/model_config.pb.h"
#include "runtime/registry.h"
#include "server/model_manager.h"
#include "server/monitored_model.h"
#include "server/response_cache.h"
#include "server/statistics.h"

namespace ferry::monitoring {
class MonitoringHub;
}  // namespace ferry::monitoring

namespace ferry::server {

struct TensorMetadata {
  std::string name;
  DataType datatype;
  Shape shape;  // as clients send it: a leading -1 when the model batches
};

struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};

struct ServerOptions {
  ModelManagerOptions models;
  // Bytes for the response cache shared by models that enable it; 0 disables it.
  size_t response_cache_bytes = 128u << 20;
  // Logs one info line per answered request (model, version, id, protocol, status,
  // duration, trace id): an access log, off by default (a write per request).
  bool log_requests = false;
};

// The facade every frontend (REST today; gRPC, batch and streaming later) calls.
// It knows models and requests, never protocols.
// Thread-safety: every method is thread-safe. Infer never blocks on model work (beyond
// an execution measured as tiny, run on the caller when the request allows it); the
// repository calls (LoadModel, UnloadModel) block for a load and must be called off
// the IO threads.
class Server {
 public:
  // Takes the runtimes; Start() loads the models.
  static Result<std::unique_ptr<Server>> Create(ServerOptions options, std::unique_ptr<runtime::RuntimeRegistry> runtimes);
  ~Server();

  Status Start();

  // Runs `request` and calls `done` exactly once, on a worker thread, or inline on
  // the caller when the request fails before reaching a model, is answered from the
  // response cache, or (request.may_run_inline) runs inline because its version's
  // executions are measured as tiny (ModelManagerOptions::inline_execution_us).
  void Infer(InferRequest request, InferCallback done);

  // Counts a request for `model` that failed before reaching Infer (e.g. its body did
  // not decode) as a failure of that model, when the model is loaded.
  // `error` is the answer the client got. `id` is the request's id, when it decoded.
  void CountFailure(std::string_view model, std::string_view version, const Status& error, Frontend frontend,
                    std::string_view id = {});

  bool Live() const { return true; }
  // Ready once started and until shutdown begins.
  bool Ready() const { return ready_.load(); }

  Result<bool> ModelReady(std::string_view model, std::string_view version) const;
  Result<ModelMetadata> GetModelMetadata(std::string_view model, std::string_view version) const;
  Result<inference::ModelConfig> GetModelConfig(std::string_view model, std::string_view version) const;

  // Statistics of every ready version (model empty), of a model's ready versions, or
  // of one version.
  Result<std::vector<StatisticsSnapshot>> GetStatistics(std::string_view model, std::string_view version) const;

  std::vector<IndexEntry> RepositoryIndex(bool ready_only) const { return models_->Index(ready_only); }
  Status LoadModel(const std::string& model) { return models_->Load(model); }
  Status UnloadModel(const std::string& model) { return models_->Unload(model); }

  // See ModelManager::SetReadyListener (used for gRPC health statuses).
  void SetModelReadyListener(ModelManager::ReadyListener l) { models_->SetReadyListener(std::move(l)); }

  monitoring::Metrics& metrics() { return metrics_; }
  static std::vector<std::string> Extensions();

  // Reports not-ready from now on (so load balancers stop sending) but keeps serving.
  void BeginShutdown() { ready_.store(false); }
  // Refuses new requests and waits for in-flight ones to be answered, then unloads.
  // With `grace_ms` >= 0, requests still in flight after that long are abandoned: they
  // count as unwanted from then on, so queued ones are dropped and running executions
  // are stopped (ModelInstance::Terminate), instead of holding shutdown up for as long
  // as a model may hang.
  void Shutdown(int grace_ms = -1);

  // Traces requests with `tracer` (not owned; must outlive the server); null: none.
  // Call before Start.
  void SetTracer(const monitoring::RequestTracer* tracer) { tracer_ = tracer; }
  // Hands every answered request of the models `tap` wants to it (payload log, drift,
  // feedback). Not owned; must outlive the server; null: none. Call before Start.
  void SetInferenceTap(monitoring::InferenceTap* tap) { tap_ = tap; }
  // Lets `annotator` add parameters to the successful answers of the versions it names
  // (outlier scores), from the request's inputs. Not owned; must outlive the server;
  // null: none. Call before Start.
  void SetResponseAnnotator(monitoring::ResponseAnnotator* annotator) { annotator_ = annotator; }
  // Monitors models through `hub` (not owned; must outlive the server; stop it after
  // Shutdown so it sees every answer): the hub becomes the inference tap and hears of
  // every version that becomes ready or goes, with its MonitoredModel (the config's
  // monitoring.* parameters over `defaults`). Call before Start.
  // A monitored request without an id gets a new one (a UUID), answered in the
  // response's `id` so that feedback can name it later.
  void SetMonitoringHub(monitoring::MonitoringHub* hub, MonitoringDefaults defaults);
  // What GET /v2/models/{m}[/versions/{v}]/monitoring answers for a loaded model: the
  // JSON of its monitoring (drift today); NOT_FOUND when the model is not monitored.
  // Called on HTTP threads; must be thread-safe. Call before Start.
  using MonitoringReport = std::function<Result<std::string>(std::string_view model, std::string_view version)>;
  void SetMonitoringReport(MonitoringReport report) { monitoring_report_ = std::move(report); }
  // POST /v2/models/{m}[/versions/{v}]/explain: per-feature attributions of each row of
  // `request`'s one input (docs/explain.md), answered through `done` as an
  // InferResponse with outputs "attributions", "expected_value" and "feature_names"
  // and the method in its parameters. Like Infer, never blocks on model work: the
  // runtime's own explanation (ModelInstance::Explain) or the model-agnostic method's
  // batches run through the version's scheduler. Errors name the field or setting.
  void Explain(InferRequest request, InferCallback done);

  // The report of a model (its precise NOT_FOUND / UNAVAILABLE when it is not loaded).
  Result<std::string> MonitoringJson(std::string_view model, std::string_view version) const;
  // What POST /v2/models/{m}[/versions/{v}]/feedback answers for a loaded model: the
  // JSON reply, and whether every item joined its prediction (200) or some did not (400,
  // the same body with its "error"). A malformed body, or a model without feedback
  // monitoring, is an INVALID_ARGUMENT naming the field. Called on HTTP threads; must be
  // thread-safe. Call before Start.
  struct FeedbackAnswer {
    std::string json;
    bool all_joined = true;
  };
  using FeedbackHandler =
      std::function<Result<FeedbackAnswer>(std::string_view model, std::string_view version, std::string_view body)>;
  void SetFeedbackHandler(FeedbackHandler handler) { feedback_handler_ = std::move(handler); }
  // Feedback for a model (its precise NOT_FOUND / UNAVAILABLE when it is not loaded).
  Result<FeedbackAnswer> Feedback(std::string_view model, std::string_view version, std::string_view body) const;

 private:
  Server(ServerOptions options, std::unique_ptr<runtime::RuntimeRegistry> runtimes);
  // The version's explanation setup, built on first use (server/explain_setup.h).
  Result<std::shared_ptr<const ExplainSetup>> ExplainSetupOf(ModelVersion& mv) const;

  monitoring::Metrics metrics_;
  std::unique_ptr<runtime::RuntimeRegistry> runtimes_;
  std::unique_ptr<ModelManager> models_;
  std::unique_ptr<ResponseCache> cache_;  // null when disabled
  const monitoring::RequestTracer* tracer_ = nullptr;
  monitoring::InferenceTap* tap_ = nullptr;
  monitoring::ResponseAnnotator* annotator_ = nullptr;
  MonitoringReport monitoring_report_;
  MonitoringDefaults monitoring_defaults_;  // set before Start; read by explanations
  FeedbackHandler feedback_handler_;
  const bool log_requests_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> abandoning_{false};  // set by Shutdown once its grace is over
  Gate inflight_;
};

}  // namespace ferry::server
