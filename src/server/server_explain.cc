// Server::Explain: POST /v2/models/{m}[/versions/{v}]/explain (docs/explain.md).
#include <algorithm>
#include <mutex>

#include "core/clock.h"
#include "core/shape.h"
#include "server/explain_setup.h"
#include "server/request_validation.h"
#include "server/server.h"

namespace ferry::server {
namespace {

namespace ex = monitoring::explain;

// Model-agnostic chunks in flight at once: enough to keep a few instances busy without
// filling the model's queue ahead of its other clients.
constexpr int64_t kChunksInFlight = 4;

// One explain request on its way: the version it holds and the one reply it owes.
struct ExplainCall {
  std::shared_ptr<VersionHandle> handle;
  std::shared_ptr<const ExplainSetup> setup;
  std::string id;
  Frontend frontend = Frontend::kHttp;
  std::function<bool()> cancelled;
  uint32_t priority = 0;
  int64_t rows = 0;
  uint64_t deadline_ns = 0;
  std::function<void(Result<InferResponse>)> reply;  // leaves the server's gate after replying

  InferResponse Response(std::vector<Tensor> outputs, Parameters parameters) const {
    InferResponse r;
    r.model_name = (*handle)->name();
    r.model_version = (*handle)->version_string();
    r.id = id;
    r.outputs = std::move(outputs);
    r.parameters = std::move(parameters);
    return r;
  }
};

// The model-agnostic run of one call: the evaluation rows go through the scheduler in
// chunks (each a batch the model runs like any request's), their outputs land in `f`,
// and the last chunk to finish attributes and replies.
struct AgnosticRun : std::enable_shared_from_this<AgnosticRun> {
  std::shared_ptr<ExplainCall> call;
  ex::ShapleyPlan plan;
  ex::Matrix rows;     // EvaluationRows
  int64_t chunk = 1;   // rows per job
  int64_t chunks = 0;
  std::mutex mu;
  int64_t next = 0;     // guarded by mu: the next chunk to submit
  int64_t pending = 0;  // guarded by mu: chunks submitted and not yet answered
  ex::Matrix f;         // guarded by mu: the model's values, [rows.rows, K]
  Status error;         // guarded by mu: the first failure
  bool replied = false;  // guarded by mu

  // Submits chunks until kChunksInFlight are out; replies when all are in.
  void Pump() {
    std::vector<scheduler::Job> jobs;
    {
      std::lock_guard lock(mu);
      while (error.ok() && next < chunks && pending < kChunksInFlight) {
        jobs.push_back(MakeJob(next++));
        ++pending;
      }
    }
    for (auto& job : jobs) {
      Status s = (*call->handle)->scheduler().Submit(std::move(job));
      if (!s.ok()) Finish(-1, s, nullptr);
    }
    MaybeReply();
  }

  scheduler::Job MakeJob(int64_t index) {
    const ExplainSetup& setup = *call->setup;
    const int64_t first = index * chunk;
    const int64_t n = std::min(chunk, rows.rows - first);
    scheduler::Job job;
    job.inputs.push_back(MatrixRowsAsTensor(rows, first, n, setup.input, setup.input_type));
    job.outputs = {setup.output};
    job.batch_size = (*call->handle)->config().max_batch_size() > 0 ? n : 1;
    job.priority = call->priority;
    const uint64_t now = NowNanos();
    job.timeout_us = call->deadline_ns > now ? std::max<uint64_t>((call->deadline_ns - now) / 1000, 1) : 1;
    job.cancelled = call->cancelled;
    job.done = [self = shared_from_this(), first, n](Result<std::vector<Tensor>> out, const scheduler::JobReport&) {
      Result<ex::Matrix> m = !out.ok()      ? Result<ex::Matrix>(out.status())
                             : out->empty() ? Result<ex::Matrix>(Internal("the model returned no output"))
                                            : TensorAsMatrix((*out)[0], n);
      if (m.ok()) self->Finish(first, Status::Ok(), &*m);
      else self->Finish(-1, m.status(), nullptr);
      self->Pump();
    };
    return job;
  }

  void Finish(int64_t first, const Status& status, const ex::Matrix* values) {
    std::lock_guard lock(mu);
    --pending;
    if (!status.ok()) {
      if (error.ok()) {
        error = status;
        if (status.code() == StatusCode::kDeadlineExceeded)
          error = DeadlineExceeded("model '" + (*call->handle)->name() +
                                   "': the explanation ran past monitoring.explain.timeout_ms (" +
                                   std::to_string(call->setup->settings.timeout_ms) + " ms): " + status.message());
      }
      return;
    }
    if (f.values.empty()) {
      f.rows = rows.rows;
      f.cols = values->cols;
      f.values.resize(static_cast<size_t>(f.rows * f.cols));
    }
    if (values->cols != f.cols) {
      if (error.ok()) error = Internal("the model's output changed width between batches");
      return;
    }
    std::copy(values->values.begin(), values->values.end(), f.values.begin() + first * f.cols);
  }

  void MaybeReply() {
    Status failed;
    {
      std::lock_guard lock(mu);
      if (replied || pending > 0 || (error.ok() && next < chunks)) return;
      replied = true;
      failed = error;
    }
    if (!failed.ok()) return call->reply(failed);
    const ExplainSetup& setup = *call->setup;
    ex::Matrix a = ex::Attribute(plan, f, call->rows, setup.background->rows);
    Parameters p;
    p["method"] = std::string(ex::MethodName(plan.method));
    p["explained_output"] = setup.output;
    p["background_rows"] = setup.background->rows;
    p["evaluations"] = rows.rows;
    if (plan.method == ex::Method::kPermutation) p["permutations"] = static_cast<int64_t>(plan.orders.size());
    call->reply(call->Response(ExplanationTensors(a, f.cols, setup.feature_names, DataType::kFp64), std::move(p)));
  }
};

void ExplainAgnostic(std::shared_ptr<ExplainCall> call, const Tensor& input) {
  const ExplainSetup& setup = *call->setup;
  if (!setup.background) return call->reply(setup.background_error);
  const ex::Matrix& bg = *setup.background;
  const bool exact = setup.settings.method != ex::MethodChoice::kPermutation;
  auto plan = ex::PlanShapley(setup.features, bg.rows, setup.settings.max_evaluations, exact, setup.settings.seed);
  if (!plan.ok()) return call->reply(plan.status());
  if (setup.settings.method == ex::MethodChoice::kKernelShap && plan->method != ex::Method::kKernelShap)
    return call->reply(InvalidArgument(
        "monitoring.explain.method: kernel_shap needs all " + std::to_string(int64_t{1} << std::min<int64_t>(setup.features, 62)) +
        " coalitions of " + std::to_string(setup.features) + " features x " + std::to_string(bg.rows) +
        " background rows, over monitoring.explain.max_evaluations (" + std::to_string(setup.settings.max_evaluations) +
        "); raise it or use permutation"));
  auto x = TensorAsMatrix(input, call->rows);
  if (!x.ok()) return call->reply(x.status());
  auto run = std::make_shared<AgnosticRun>();
  run->call = call;
  run->plan = std::move(plan).value();
  run->rows = ex::EvaluationRows(run->plan, *x, bg);
  const int64_t max_batch = (*call->handle)->config().max_batch_size();
  run->chunk = max_batch > 0 ? max_batch : run->rows.rows;
  run->chunks = (run->rows.rows + run->chunk - 1) / run->chunk;
  run->Pump();
}

}  // namespace

Result<std::shared_ptr<const ExplainSetup>> Server::ExplainSetupOf(ModelVersion& mv) const {
  if (auto s = mv.explain_setup()) return s;
  // Built once per version; two first requests racing both build it, and either result serves.
  FERRY_ASSIGN_OR_RETURN(ExplainSetup built, BuildExplainSetup(mv.config(), mv.model_dir(), monitoring_defaults_));
  auto shared = std::make_shared<const ExplainSetup>(std::move(built));
  mv.set_explain_setup(shared);
  return std::shared_ptr<const ExplainSetup>(shared);
}

void Server::Explain(InferRequest request, InferCallback done) {
  if (!inflight_.TryEnter()) return done(Unavailable("the server is shutting down"));
  auto handle_or = models_->Acquire(request.model_name, request.model_version);
  if (!handle_or.ok()) {
    inflight_.Leave();
    return done(handle_or.status());
  }
  auto call = std::make_shared<ExplainCall>();
  call->handle = std::make_shared<VersionHandle>(std::move(handle_or).value());
  call->reply = [this, call_ptr = std::weak_ptr<ExplainCall>(call), done = std::move(done)](Result<InferResponse> r) {
    // The version is let go before the reply, as Infer does, so an unload is not held up
    // by a client that is slow to read.
    if (auto c = call_ptr.lock()) c->handle.reset();
    done(std::move(r));
    inflight_.Leave();
  };
  ModelVersion& mv = **call->handle;
  auto setup = ExplainSetupOf(mv);
  if (!setup.ok()) return call->reply(setup.status());
  call->setup = *setup;
  const ExplainSetup& s = **setup;
  auto validated = ValidateRequest(mv.config(), &request);
  if (!validated.ok()) return call->reply(validated.status());
  const Tensor& input = request.inputs[0];
  call->rows = input.shape.empty() ? 0 : input.shape[0];
  if (input.shape.size() != 2 || input.shape[1] != s.features)
    return call->reply(InvalidArgument("input '" + input.name + "': shape " + ShapeToString(input.shape) +
                                       ", explanations take [rows, " + std::to_string(s.features) + "]"));
  if (call->rows < 1 || call->rows > s.settings.max_rows)
    return call->reply(InvalidArgument("input '" + input.name + "': " + std::to_string(call->rows) +
                                       " rows, monitoring.explain.max_rows allows 1.." +
                                       std::to_string(s.settings.max_rows) + " per request"));
  if (!request.outputs.empty() && request.outputs[0].name != s.output) {
    // The request names the output to explain; the setup's is the default.
    auto own = std::make_shared<ExplainSetup>(s);
    own->output = request.outputs[0].name;
    call->setup = std::move(own);
  }
  call->id = request.id;
  call->frontend = request.frontend;
  call->cancelled = [this, client_gone = std::move(request.cancelled)] {
    return abandoning_.load(std::memory_order_relaxed) || (client_gone && client_gone());
  };
  call->priority = validated->priority;
  call->deadline_ns = NowNanos() + s.settings.timeout_ms * 1'000'000;

  if (s.settings.method != ex::MethodChoice::kAuto && s.settings.method != ex::MethodChoice::kTreeShap)
    return ExplainAgnostic(std::move(call), input);
  // The runtime's own explanation first; a runtime without one falls back (auto) or is refused.
  scheduler::Job job;
  job.kind = scheduler::JobKind::kExplain;
  job.inputs = request.inputs;
  job.batch_size = validated->batch_size;
  job.priority = validated->priority;
  job.timeout_us = s.settings.timeout_ms * 1000;
  job.cancelled = call->cancelled;
  job.done = [call, input](Result<std::vector<Tensor>> out, const scheduler::JobReport&) {
    const ExplainSetup& setup = *call->setup;
    if (!out.ok() && out.status().code() == StatusCode::kUnimplemented) {
      if (setup.settings.method == ex::MethodChoice::kAuto) return ExplainAgnostic(call, input);
      return call->reply(InvalidArgument("monitoring.explain.method: tree_shap is not supported by runtime '" +
                                         (*call->handle)->platform() + "' of model '" + (*call->handle)->name() +
                                         "' (use auto, kernel_shap or permutation)"));
    }
    if (!out.ok()) return call->reply(out.status());
    if (out->empty()) return call->reply(Internal("the runtime's explanation has no tensor"));
    const Tensor& t = (*out)[0];
    const int64_t groups = t.shape.size() == 3 ? t.shape[1] : 1;
    auto a = TensorAsMatrix(t, call->rows);
    if (!a.ok()) return call->reply(a.status());
    Parameters p;
    p["method"] = std::string("tree_shap");
    p["output_space"] = std::string("margin");
    call->reply(call->Response(ExplanationTensors(*a, groups, setup.feature_names, t.datatype), std::move(p)));
  };
  Status submitted = mv.scheduler().Submit(std::move(job));
  if (!submitted.ok()) call->reply(submitted);
}

}  // namespace ferry::server
