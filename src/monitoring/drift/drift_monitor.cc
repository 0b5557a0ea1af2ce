#include "monitoring/drift/drift_monitor.h"

#include "core/log.h"
#include "monitoring/drift/record_features.h"

namespace ferry::monitoring::drift {

struct DriftMonitor::VersionState {
  VersionState(std::string m, std::string v, DriftSettings s, ReferenceProfile p)
      : model(std::move(m)), version(std::move(v)), settings(std::move(s)), profile(std::move(p)) {}

  const std::string model, version;
  const DriftSettings settings;
  const ReferenceProfile profile;
  std::vector<const ProfileFeature*> features;  // into profile: inputs, then predictions
  size_t inputs = 0;

  std::mutex mu;
  std::unique_ptr<SlidingWindow> window;  // guarded by mu
  std::vector<FeatureSketch> merged;      // Evaluate's scratch; guarded by mu
  FeatureLayout layout;                   // features -> the requests' tensors; guarded by mu
  uint64_t step_started_ns = 0;           // guarded by mu (duration windows)
  uint64_t rows_total = 0, unmapped_total = 0, evaluations = 0, alarms = 0;  // guarded by mu
  uint64_t rows_unreported = 0;  // rows not yet added to the metrics; guarded by mu
  // A step closed since the last evaluation and the window is judgeable (full, or past
  // min_rows): the next evaluation allowed by eval_interval takes it. Guarded by mu.
  bool pending = false;
  uint64_t evaluated_ns = 0;      // clock time of the last evaluation; guarded by mu
  uint64_t evaluated_wall_ms = 0;  // guarded by mu
  std::optional<DriftEvaluation> last;  // guarded by mu
};

// A version's features read on the request threads; keeps the version's state (its
// profile and feature list, constant once attached) alive while the hub holds it.
class DriftMonitor::Rows final : public FeatureRowExtractor {
 public:
  explicit Rows(std::shared_ptr<const VersionState> state) : state_(std::move(state)) {}
  const VersionState* state() const { return state_.get(); }

  size_t width() const override { return state_->features.size(); }
  std::unique_ptr<Cache> NewCache() const override { return std::make_unique<LayoutCache>(); }
  void Append(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, Cache* cache,
              FeatureRowBlock* block) const override {
    RecordFeatures::AppendRows(state_->features, state_->inputs, inputs, outputs,
                               &static_cast<LayoutCache*>(cache)->layout, block);
  }

 private:
  struct LayoutCache final : Cache {
    FeatureLayout layout;
  };
  std::shared_ptr<const VersionState> state_;
};

DriftMonitor::DriftMonitor(Options options) : options_(options) {
  if (options_.registry != nullptr) metrics_ = std::make_unique<DriftMetrics>(*options_.registry);
}

DriftMonitor::~DriftMonitor() = default;

Status DriftMonitor::Attach(const MonitoredModel& model) {
  FERRY_ASSIGN_OR_RETURN(DriftSettings settings, ParseDriftSettings(model.settings, model.model_dir));
  if (!settings.enabled) return Status::Ok();
  auto profile = ReadProfile(settings.profile);
  if (!profile.ok()) {
    return InvalidArgument("monitoring.drift.profile: " + profile.status().message() +
                           " (build one with 'ferry profile build')");
  }
  const size_t width = profile->features.size() + profile->predictions.size();
  if (width == 0) return InvalidArgument("monitoring.drift.profile: " + settings.profile.string() + ": no features");
  if (width > settings.max_features) {
    return InvalidArgument("monitoring.drift.max_features: the profile has " + std::to_string(width) +
                           " features and predictions, more than " + std::to_string(settings.max_features));
  }
  auto state = std::make_shared<VersionState>(model.model, model.version, std::move(settings), std::move(profile).value());
  std::vector<FeatureSketch> empty;
  for (const auto& f : state->profile.features) state->features.push_back(&f);
  state->inputs = state->features.size();
  for (const auto& f : state->profile.predictions) state->features.push_back(&f);
  // Windows count numeric values in the reference's knots (built once here, shared by
  // every step): no sketch to sort at an evaluation, and exact however long the window.
  for (const ProfileFeature* f : state->features) {
    empty.push_back(f->sketch.ExactWindow(
        f->sketch.kind == FeatureKind::kNumeric ? ReferenceKnots::Build(f->sketch) : nullptr));
  }
  state->window = std::make_unique<SlidingWindow>(std::move(empty), state->settings.buckets);
  state->step_started_ns = options_.clock->NowNanos();
  FERRY_LOG(kInfo, "drift monitoring attached",
            ("model", model.model)("version", model.version)("profile", state->settings.profile.string())(
                "features", width));
  if (metrics_) metrics_->Attached(model.model, model.version);
  std::lock_guard lock(mu_);
  versions_[{model.model, model.version}] = std::move(state);
  return Status::Ok();
}

void DriftMonitor::Detach(std::string_view model, std::string_view version) {
  {
    std::lock_guard lock(mu_);
    auto it = versions_.find(Key{model, version});
    if (it == versions_.end()) return;
    versions_.erase(it);
  }
  if (metrics_) metrics_->Remove(std::string(model), std::string(version));
}

std::shared_ptr<DriftMonitor::VersionState> DriftMonitor::Find(std::string_view model, std::string_view version) const {
  std::lock_guard lock(mu_);
  auto it = versions_.find(Key{model, version});
  return it == versions_.end() ? nullptr : it->second;
}

bool DriftMonitor::Wants(std::string_view model, std::string_view version) const {
  return Find(model, version) != nullptr;
}

TapDemand DriftMonitor::Demand(std::string_view model, std::string_view version) const {
  std::shared_ptr<VersionState> state = Find(model, version);
  if (!state) return {};
  return {true, state->inputs > 0, state->features.size() > state->inputs, 1.0};
}

std::shared_ptr<const FeatureRowExtractor> DriftMonitor::RowsFor(std::string_view model,
                                                                  std::string_view version) const {
  std::shared_ptr<VersionState> state = Find(model, version);
  if (!state) return nullptr;
  for (const ProfileFeature* f : state->features)
    if (f->sketch.kind != FeatureKind::kNumeric) return nullptr;
  return std::make_shared<Rows>(std::move(state));
}

void DriftMonitor::ConsumeRows(std::string_view model, std::string_view version, const FeatureRowExtractor& extractor,
                               const FeatureRowBlock& block) {
  const auto* rows = dynamic_cast<const Rows*>(&extractor);
  std::shared_ptr<VersionState> state = Find(model, version);
  // Rows read for a state that has been replaced (the version re-attached) are not this one's.
  if (!state || !rows || rows->state() != state.get()) return;
  std::lock_guard lock(state->mu);
  const uint64_t now = options_.clock->NowNanos();
  state->unmapped_total += block.unmapped;
  const size_t width = state->features.size();
  const double* p = block.values.data();
  const double* const end = p + block.values.size();
  // Request by request, as AddRecord: a step closes between requests, never inside one.
  while (p < end) {
    const uint64_t r = static_cast<uint64_t>(*p++);
    MaybeAdvance(*state, now);
    std::vector<FeatureSketch>& open = state->window->open();
    if (r >= kRowTileMin) {
      // A batch: counted column by column (the same counts, fewer steps per value).
      AddRows(open, p, r);
      p += r * width;
    } else {
      FeatureSketch* out = open.data();
      for (uint64_t row = 0; row < r; ++row, p += width)
        for (size_t i = 0; i < width; ++i)
          if (!IsAbsentValue(p[i])) out[i].AddNumber(p[i]);
    }
    state->window->CountRows(r);
    state->rows_total += r;
    state->rows_unreported += r;
    if (!state->settings.window_is_time) MaybeAdvance(*state, now);
  }
}

void DriftMonitor::Consume(const InferenceRecord& record) {
  const InferenceRecord* one[] = {&record};
  ConsumeBatch(one);
}

void DriftMonitor::ConsumeBatch(std::span<const InferenceRecord* const> records) {
  if (records.empty()) return;
  std::shared_ptr<VersionState> state = Find(records.front()->model, records.front()->version);
  if (!state) return;
  std::lock_guard lock(state->mu);
  // One clock reading for the run: its records were all queued within one hub wake-up.
  const uint64_t now = options_.clock->NowNanos();
  for (const InferenceRecord* r : records)
    if (r->code == StatusCode::kOk) AddRecord(*state, *r, now);
}

void DriftMonitor::AddRecord(VersionState& state, const InferenceRecord& record, uint64_t now) const {
  // A duration step that ended before this record arrived closes first.
  MaybeAdvance(state, now);
  const uint64_t rows = RecordFeatures::Add(state.features, state.inputs, record.inputs, record.outputs,
                                            &state.window->open(), &state.unmapped_total, &state.layout);
  state.window->CountRows(rows);
  state.rows_total += rows;
  state.rows_unreported += rows;
  if (!state.settings.window_is_time) MaybeAdvance(state, now);
}

void DriftMonitor::Tick() {
  std::vector<std::shared_ptr<VersionState>> states;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, s] : versions_) states.push_back(s);
  }
  const uint64_t now = options_.clock->NowNanos();
  for (const auto& s : states) {
    std::lock_guard lock(s->mu);
    MaybeAdvance(*s, now);
    ReportRows(*s);
  }
}

void DriftMonitor::MaybeAdvance(VersionState& s, uint64_t now) const {
  const DriftSettings& cfg = s.settings;
  if (!cfg.window_is_time) {
    const uint64_t step = (cfg.window_rows + cfg.buckets - 1) / cfg.buckets;
    if (s.window->open_rows() >= step) {
      s.window->Seal();
      // A count window is judged once it is full (all its steps closed).
      s.pending = s.window->closed_steps() == cfg.buckets;
      ReportRows(s);
    }
  } else if (const uint64_t step_ns = std::max<uint64_t>(1, cfg.window_ns / cfg.buckets);
             now - s.step_started_ns >= step_ns) {
    // After a long idle spell at most `buckets` empty steps matter: they empty the window.
    uint64_t due = (now - s.step_started_ns) / step_ns;
    s.step_started_ns += due * step_ns;
    due = std::min<uint64_t>(due, cfg.buckets);
    for (uint64_t i = 0; i < due; ++i) s.window->Seal();
    s.pending = s.window->rows() >= cfg.min_rows;
  }
  // The first window is judged at once; later ones at most once per interval (sorting
  // and testing every feature costs far more than the rows of one step).
  if (s.pending && (s.evaluations == 0 || now - s.evaluated_ns >= cfg.eval_interval_ns)) Evaluate(s, now);
}

void DriftMonitor::ReportRows(VersionState& s) const {
  if (metrics_ && s.rows_unreported > 0) metrics_->Rows(s.model, s.version, s.rows_unreported);
  s.rows_unreported = 0;
}

void DriftMonitor::Evaluate(VersionState& s, uint64_t now) const {
  DriftEvaluation ev = EvaluateDrift(s.features, s.window->Window(&s.merged), s.settings.test);
  for (size_t i = s.inputs; i < ev.features.size(); ++i) ev.features[i].prediction = true;
  ++s.evaluations;
  if (ev.drift) ++s.alarms;
  s.pending = false;
  s.evaluated_ns = now;
  s.evaluated_wall_ms = WallMillis();
  ReportRows(s);
  if (metrics_) metrics_->Evaluated(s.model, s.version, ev, s.settings.test, s.settings.metrics_top_k, s.evaluated_wall_ms);
  s.last = std::move(ev);
}

Result<std::string> DriftMonitor::SnapshotJson(std::string_view model, std::string_view version) const {
  std::vector<std::shared_ptr<VersionState>> states;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, s] : versions_) {
      if (key.first == model && (version.empty() || key.second == version)) states.push_back(s);
    }
  }
  if (states.empty()) {
    return NotFound("model '" + std::string(model) + "'" +
                    (version.empty() ? "" : " version '" + std::string(version) + "'") + " has no drift monitoring");
  }
  std::vector<DriftSnapshot> snaps;
  for (const auto& s : states) {
    std::lock_guard lock(s->mu);
    // Asked now: a window that closed since the last evaluation is judged now, whatever
    // the interval (so the answer is never a step behind).
    if (s->pending) Evaluate(*s, options_.clock->NowNanos());
    DriftSnapshot snap;
    snap.model = s->model;
    snap.version = s->version;
    snap.settings = s->settings;
    snap.rows_total = s->rows_total;
    snap.unmapped_total = s->unmapped_total;
    snap.open_rows = s->window->open_rows();
    snap.evaluations = s->evaluations;
    snap.alarms = s->alarms;
    snap.evaluated_wall_ms = s->evaluated_wall_ms;
    snap.last = s->last;
    snaps.push_back(std::move(snap));
  }
  return DriftSnapshotJson(std::string(model), snaps);
}

std::optional<DriftEvaluation> DriftMonitor::LastEvaluation(std::string_view model, std::string_view version) const {
  std::shared_ptr<VersionState> s = Find(model, version);
  if (!s) return std::nullopt;
  std::lock_guard lock(s->mu);
  return s->last;
}

}  // namespace ferry::monitoring::drift
