#include "monitoring/quality/feedback_monitor.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <optional>
#include <unordered_map>

#include "core/log.h"
#include "monitoring/drift/record_features.h"
#include "monitoring/quality/calibration.h"
#include "monitoring/quality/cbpe.h"
#include "monitoring/quality/feedback_body.h"
#include "monitoring/quality/prediction_store.h"
#include "monitoring/quality/quality_metrics.h"

namespace ferry::monitoring::quality {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// What a version's prediction output holds (fixed by its first readable answer).
enum class Kind { kUnknown, kProbabilities, kLabels, kRegression };

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kProbabilities: return "probabilities";
    case Kind::kLabels: return "labels";
    case Kind::kRegression: return "regression";
    default: return "unknown";
  }
}

constexpr size_t kMaxClasses = 1000;  // distinct labels a label output may have

// A tensor's rows (first dimension; 1 for a scalar) and row width; false when its
// bytes do not match its shape.
bool ReadPrediction(const Tensor& t, StoredPrediction* out) {
  uint64_t elements = 1;
  for (int64_t d : t.shape) {
    if (d < 0) return false;
    elements *= static_cast<uint64_t>(d);
  }
  const uint64_t rows = t.shape.empty() ? 1 : static_cast<uint64_t>(t.shape[0]);
  if (rows == 0 || elements == 0 || rows > UINT32_MAX) return false;
  out->rows = static_cast<uint32_t>(rows);
  out->width = static_cast<uint32_t>(elements / rows);
  if (t.datatype == DataType::kBytes) {
    std::string_view b = t.bytes();
    size_t pos = 0;
    for (uint64_t i = 0; i < elements; ++i) {
      if (b.size() - pos < 4) return false;
      uint32_t len;
      std::memcpy(&len, b.data() + pos, 4);
      pos += 4;
      if (b.size() - pos < len) return false;
      out->labels.emplace_back(b.substr(pos, len));
      pos += len;
    }
    return true;
  }
  const size_t es = DataTypeSize(t.datatype);
  if (es == 0 || t.byte_size() != elements * es) return false;
  out->values.resize(elements);
  for (uint64_t i = 0; i < elements; ++i) out->values[i] = drift::ElementAsDouble(t.datatype, t.data() + i * es);
  return true;
}

bool IsFloat(DataType t) {
  return t == DataType::kFp16 || t == DataType::kBf16 || t == DataType::kFp32 || t == DataType::kFp64;
}

bool LooksLikeProbabilities(const StoredPrediction& p) {
  if (p.width < 2) return false;
  for (uint32_t r = 0; r < p.rows; ++r) {
    double sum = 0;
    for (uint32_t j = 0; j < p.width; ++j) {
      const double v = p.values[r * p.width + j];
      if (!(v >= 0 && v <= 1)) return false;
      sum += v;
    }
    if (std::abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

struct Joined {
  uint64_t at_ns = 0;
  ClassObservation c;
  RegressionObservation r;
};

struct Scored {
  uint64_t at_ns = 0;
  double p = 0;
  bool predicted = false;
};

void Str(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void Num(Writer& w, std::optional<double> v) {
  if (v && std::isfinite(*v)) {
    w.Double(*v);
  } else {
    w.Null();
  }
}

}  // namespace

struct FeedbackMonitor::VersionState {
  VersionState(std::string m, std::string v, FeedbackSettings s)
      : model(std::move(m)), version(std::move(v)), settings(std::move(s)), store(settings.max_pending, settings.ttl_ns) {}

  const std::string model, version;
  const FeedbackSettings settings;
  // CBPE's calibration of the positive-class scores (none: used raw), fixed at Attach.
  std::optional<IsotonicCalibrator> calibrator;
  std::string calibration = "none";  // none | isotonic | not_needed

  std::mutex mu;
  PredictionStore store;      // guarded by mu
  Kind kind = Kind::kUnknown;  // guarded by mu
  uint32_t width = 0;          // guarded by mu: the prediction's row width
  std::vector<std::string> labels;                  // guarded by mu: class index -> label (kLabels)
  std::unordered_map<std::string, int32_t> label_index;  // guarded by mu
  std::deque<Joined> joined;  // guarded by mu: the quality window
  std::deque<Scored> scored;  // guarded by mu: the estimation window (binary probabilities)
  uint64_t stored_total = 0, unreadable_total = 0;  // guarded by mu
  std::map<std::string, uint64_t> results;         // guarded by mu: feedback items by result
  uint64_t evicted_seen = 0, expired_seen = 0;     // guarded by mu: store counts already exported
  bool dirty = true;                               // guarded by mu: windows changed since Publish

  int32_t classes() const { return kind == Kind::kLabels ? static_cast<int32_t>(labels.size())
                                                         : static_cast<int32_t>(std::max<uint32_t>(2, width)); }
  // The positive class of a binary classifier, else -1 (multi-class: macro averages).
  int32_t positive() const {
    if (kind == Kind::kProbabilities) return width <= 2 ? 1 : -1;
    if (kind != Kind::kLabels || labels.size() > 2) return -1;
    for (const auto& l : labels) {
      if (l != "0" && l != "1") return -1;
    }
    auto it = label_index.find("1");
    return it == label_index.end() ? -1 : it->second;
  }
  bool binary_probabilities() const { return kind == Kind::kProbabilities && width <= 2; }

  void Trim(uint64_t now) {
    const auto& s = settings;
    auto trim = [&](auto& window) {
      while (!window.empty() &&
             (s.window_is_time ? now - window.front().at_ns > s.window_ns || window.size() > s.kMaxWindowRows
                               : window.size() > s.window_rows))
        window.pop_front();
    };
    trim(joined);
    trim(scored);
  }

  // A probability row's positive-class probability and decision (binary), or its argmax.
  void Decide(const double* row, double* p_positive, int32_t* predicted) const {
    if (width == 1) {
      *p_positive = row[0];
      *predicted = row[0] >= settings.threshold ? 1 : 0;
    } else if (width == 2) {
      *p_positive = row[1];
      *predicted = row[1] >= settings.threshold ? 1 : 0;
    } else {
      *p_positive = 0;
      *predicted = static_cast<int32_t>(std::max_element(row, row + width) - row);
    }
  }

  // Checks `target` against `p` and appends the joined rows to `out` (nothing on error).
  Status Observe(const StoredPrediction& p, const std::vector<TargetScalar>& target, const std::string& field,
                 uint64_t now, std::vector<Joined>* out) {
    const size_t per_row = kind == Kind::kRegression ? p.width : 1;
    const size_t want = static_cast<size_t>(p.rows) * per_row;
    if (target.size() != want) {
      return InvalidArgument(field + ": expected " + std::to_string(want) + (want == 1 ? " value" : " values") +
                             " (the request's prediction has " + std::to_string(p.rows) + " row" +
                             (p.rows == 1 ? "" : "s") +
                             (kind == Kind::kRegression ? " of " + std::to_string(p.width) : std::string()) +
                             "), got " + std::to_string(target.size()));
    }
    std::vector<Joined> rows(p.rows);
    for (uint32_t r = 0; r < p.rows; ++r) {
      Joined& j = rows[r];
      j.at_ns = now;
      const std::string at = want == 1 ? field : field + "[" + std::to_string(r * per_row) + "]";
      if (kind == Kind::kRegression) {
        for (uint32_t k = 0; k < p.width; ++k) {
          const TargetScalar& t = target[r * p.width + k];
          if (t.is_text) return InvalidArgument(at + ": expected a number (the model is a regressor), got '" + t.text + "'");
          j.r.truth.push_back(t.number);
          j.r.predicted.push_back(p.values[r * p.width + k]);
        }
        continue;
      }
      const TargetScalar& t = target[r];
      if (kind == Kind::kProbabilities) {
        const int32_t k = classes();
        int32_t truth = -1;
        if (t.is_text) {
          auto named = std::find(settings.classes.begin(), settings.classes.end(), t.text);
          if (named != settings.classes.end()) truth = static_cast<int32_t>(named - settings.classes.begin());
        } else if (t.number == std::floor(t.number) && t.number >= 0 && t.number < k) {
          truth = static_cast<int32_t>(t.number);
        }
        if (truth < 0 || truth >= k) {
          return InvalidArgument(at + ": '" + (t.is_text ? t.text : drift::NumberText(t.number)) +
                                 "' is not a class of the model (a class index 0.." + std::to_string(k - 1) +
                                 (settings.classes.empty() ? std::string() : " or a name in feedback.classes") + ")");
        }
        const double* row = p.values.data() + static_cast<size_t>(r) * p.width;
        double ignored;
        Decide(row, &ignored, &j.c.predicted);
        j.c.truth = truth;
        if (p.width == 1) {
          j.c.probabilities = {1 - row[0], row[0]};
        } else {
          j.c.probabilities.assign(row, row + p.width);
        }
        continue;
      }
      // Labels: compared as text, numbers in their shortest form ("1", "2.5").
      const std::string truth = t.is_text ? t.text : drift::NumberText(t.number);
      const std::string predicted =
          p.labels.empty() ? drift::NumberText(p.values[static_cast<size_t>(r) * p.width]) : p.labels[r * p.width];
      for (const std::string* l : {&truth, &predicted}) {
        if (label_index.count(*l)) continue;
        if (labels.size() >= kMaxClasses)
          return InvalidArgument(at + ": more than " + std::to_string(kMaxClasses) + " distinct labels");
        label_index.emplace(*l, static_cast<int32_t>(labels.size()));
        labels.push_back(*l);
      }
      j.c.truth = label_index.at(truth);
      j.c.predicted = label_index.at(predicted);
    }
    for (auto& j : rows) out->push_back(std::move(j));
    return Status::Ok();
  }

  struct Now {
    std::optional<ClassificationQuality> classification;
    std::optional<RegressionQuality> regression;
    std::optional<CbpeEstimate> estimate;
  };
  Now Compute() const {
    Now now;
    if (kind == Kind::kRegression) {
      std::vector<RegressionObservation> rows;
      rows.reserve(joined.size());
      for (const auto& j : joined) rows.push_back(j.r);
      now.regression = Regression(rows);
    } else if (kind != Kind::kUnknown) {
      std::vector<ClassObservation> rows;
      rows.reserve(joined.size());
      for (const auto& j : joined) rows.push_back(j.c);
      now.classification = Classification(rows, classes(), positive());
    }
    if (binary_probabilities() && settings.estimate) {
      std::vector<double> p;
      std::vector<bool> predicted;
      for (const auto& s : scored) {
        p.push_back(s.p);
        predicted.push_back(s.predicted);
      }
      now.estimate = EstimateBinary(p, predicted);
    }
    return now;
  }
};

FeedbackMonitor::FeedbackMonitor(Options options) : options_(options) {
  if (options_.registry != nullptr) series_ = std::make_unique<QualitySeries>(*options_.registry);
}

FeedbackMonitor::~FeedbackMonitor() = default;

Status FeedbackMonitor::Attach(const MonitoredModel& model) {
  FERRY_ASSIGN_OR_RETURN(FeedbackSettings settings, ParseFeedbackSettings(model.settings, model.model_dir));
  if (!settings.enabled) return Status::Ok();
  auto state = std::make_shared<VersionState>(model.model, model.version, std::move(settings));
  if (!state->settings.calibration.empty()) {
    auto set = ReadCalibrationSet(state->settings.calibration);
    if (!set.ok()) return InvalidArgument("monitoring.feedback.calibration: " + set.status().message());
    // As NannyML: calibrate only when it lowers the expected calibration error.
    if (NeedsCalibration(set->scores, set->labels)) {
      state->calibrator = IsotonicCalibrator::Fit(set->scores, set->labels);
      state->calibration = "isotonic";
    } else {
      state->calibration = "not_needed";
    }
  }
  FERRY_LOG(kInfo, "feedback monitoring attached",
            ("model", model.model)("version", model.version)("output", state->settings.output)(
                "max_pending", state->settings.max_pending));
  if (series_) series_->Attached(model.model, model.version);
  std::lock_guard lock(mu_);
  versions_[{model.model, model.version}] = std::move(state);
  return Status::Ok();
}

void FeedbackMonitor::Detach(std::string_view model, std::string_view version) {
  {
    std::lock_guard lock(mu_);
    auto it = versions_.find(Key{model, version});
    if (it == versions_.end()) return;
    versions_.erase(it);
  }
  if (series_) series_->Remove(std::string(model), std::string(version));
}

std::shared_ptr<FeedbackMonitor::VersionState> FeedbackMonitor::Find(std::string_view model,
                                                                     std::string_view version) const {
  std::lock_guard lock(mu_);
  auto it = versions_.find(Key{model, version});
  return it == versions_.end() ? nullptr : it->second;
}

bool FeedbackMonitor::Wants(std::string_view model, std::string_view version) const {
  return Find(model, version) != nullptr;
}

TapDemand FeedbackMonitor::Demand(std::string_view model, std::string_view version) const {
  const bool w = Wants(model, version);
  return {w, false, w, 1.0};
}

void FeedbackMonitor::Consume(const InferenceRecord& record) {
  std::shared_ptr<VersionState> state = Find(record.model, record.version);
  if (!state || record.code != StatusCode::kOk || record.request_id.empty() || record.outputs.empty()) return;
  VersionState& s = *state;
  const Tensor* out = &record.outputs.front();
  if (!s.settings.output.empty()) {
    out = nullptr;
    for (const auto& t : record.outputs) {
      if (t.name == s.settings.output) out = &t;
    }
  }
  StoredPrediction p;
  const bool readable = out != nullptr && ReadPrediction(*out, &p);
  std::lock_guard lock(s.mu);
  const uint64_t now = options_.clock->NowNanos();
  if (readable && s.kind == Kind::kUnknown) {
    const bool text = out->datatype == DataType::kBytes;
    const bool floats = IsFloat(out->datatype);
    switch (s.settings.task) {
      case Task::kRegression: s.kind = text ? Kind::kUnknown : Kind::kRegression; break;
      case Task::kClassification: s.kind = floats ? Kind::kProbabilities : Kind::kLabels; break;
      case Task::kAuto:
        s.kind = !floats ? Kind::kLabels : LooksLikeProbabilities(p) ? Kind::kProbabilities : Kind::kRegression;
        break;
    }
    s.width = p.width;
    if (s.kind != Kind::kUnknown)
      FERRY_LOG(kInfo, "feedback: prediction output read", ("model", s.model)("version", s.version)(
                           "output", out->name)("kind", KindName(s.kind))("width", p.width));
  }
  const bool fits = readable && s.kind != Kind::kUnknown && p.width == s.width &&
                    (s.kind != Kind::kLabels || p.width == 1) && (s.kind == Kind::kLabels || p.labels.empty());
  if (!fits) {
    ++s.unreadable_total;
    if (series_) series_->Dropped(s.model, s.version, "unreadable", 1);
    return;
  }
  if (s.binary_probabilities() && s.settings.estimate) {
    for (uint32_t r = 0; r < p.rows; ++r) {
      Scored sc;
      sc.at_ns = now;
      int32_t predicted;
      s.Decide(p.values.data() + static_cast<size_t>(r) * p.width, &sc.p, &predicted);
      sc.predicted = predicted == 1;  // the model's decision, on its raw score
      if (s.calibrator) sc.p = s.calibrator->Apply(sc.p);
      s.scored.push_back(sc);
    }
    s.dirty = true;
  }
  s.store.Put(record.request_id, std::move(p), now);
  ++s.stored_total;
  s.Trim(now);
}

void FeedbackMonitor::Publish(VersionState& s) {
  const uint64_t now = options_.clock->NowNanos();
  s.store.Expire(now);
  s.Trim(now);
  if (!series_) return;
  series_->Pending(s.model, s.version, static_cast<double>(s.store.pending()));
  if (s.store.evicted() > s.evicted_seen) series_->Dropped(s.model, s.version, "evicted", s.store.evicted() - s.evicted_seen);
  if (s.store.expired() > s.expired_seen) series_->Dropped(s.model, s.version, "expired", s.store.expired() - s.expired_seen);
  s.evicted_seen = s.store.evicted();
  s.expired_seen = s.store.expired();
  if (!s.dirty) return;
  s.dirty = false;
  const VersionState::Now q = s.Compute();
  auto set = [&](const char* metric, bool estimated, std::optional<double> v) {
    series_->Quality(s.model, s.version, metric, estimated, v);
  };
  const bool have = !s.joined.empty();
  if (q.classification) {
    const auto& c = *q.classification;
    set("accuracy", false, have ? std::optional(c.accuracy) : std::nullopt);
    set("precision", false, have ? std::optional(c.precision) : std::nullopt);
    set("recall", false, have ? std::optional(c.recall) : std::nullopt);
    set("f1", false, have ? std::optional(c.f1) : std::nullopt);
    set("roc_auc", false, c.roc_auc);
    set("log_loss", false, c.log_loss);
  }
  if (q.regression) {
    const auto& r = *q.regression;
    set("rmse", false, have ? std::optional(r.rmse) : std::nullopt);
    set("mae", false, have ? std::optional(r.mae) : std::nullopt);
    set("r2", false, r.r2);
  }
  set("window_rows", false, static_cast<double>(s.joined.size()));
  if (q.estimate) {
    const auto& e = *q.estimate;
    const bool any = e.rows > 0;
    set("accuracy", true, any ? std::optional(e.accuracy) : std::nullopt);
    set("precision", true, any ? std::optional(e.precision) : std::nullopt);
    set("recall", true, any ? std::optional(e.recall) : std::nullopt);
    set("f1", true, any ? std::optional(e.f1) : std::nullopt);
    set("roc_auc", true, e.roc_auc);
    set("window_rows", true, static_cast<double>(e.rows));
  }
}

void FeedbackMonitor::Tick() {
  std::vector<std::shared_ptr<VersionState>> states;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, s] : versions_) states.push_back(s);
  }
  for (const auto& s : states) {
    std::lock_guard lock(s->mu);
    Publish(*s);
  }
}

Result<FeedbackReply> FeedbackMonitor::Feedback(std::string_view model, std::string_view version,
                                                std::string_view body) {
  std::vector<std::shared_ptr<VersionState>> states;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, s] : versions_) {
      if (key.first == model && (version.empty() || key.second == version)) states.push_back(s);
    }
  }
  if (states.empty()) {
    return InvalidArgument("model '" + std::string(model) + "'" +
                           (version.empty() ? "" : " version '" + std::string(version) + "'") +
                           " has no feedback monitoring (set monitoring.feedback.enabled)");
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<FeedbackItem> items, ParseFeedbackBody(body, options_.max_items));

  // Pass 1: which version holds each id, and does its target fit? Nothing is joined
  // unless every target that found its prediction fits it.
  const uint64_t now = options_.clock->NowNanos();
  std::vector<VersionState*> owner(items.size(), nullptr);
  for (size_t i = 0; i < items.size(); ++i) {
    for (const auto& s : states) {
      std::lock_guard lock(s->mu);
      const StoredPrediction* p = s->store.Peek(items[i].id, now);
      if (p == nullptr) continue;
      owner[i] = s.get();
      std::vector<Joined> scratch;
      auto labels = s->labels;
      auto index = s->label_index;
      Status fit = s->Observe(*p, items[i].target, "feedback[" + std::to_string(i) + "].target", now, &scratch);
      s->labels = std::move(labels);  // pass 1 must not grow the label dictionary
      s->label_index = std::move(index);
      if (!fit.ok()) return fit;
      break;
    }
  }

  // Pass 2: take and join.
  std::map<std::string, uint64_t> counts;
  std::string first_error;
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("model");
  Str(w, model);
  w.Key("items");
  w.Uint64(items.size());
  w.Key("rejected");
  w.StartArray();
  for (size_t i = 0; i < items.size(); ++i) {
    JoinResult result = JoinResult::kUnknown;
    VersionState* where = owner[i];
    if (where != nullptr) {
      std::lock_guard lock(where->mu);
      StoredPrediction p;
      result = where->store.Take(items[i].id, now, &p);
      if (result == JoinResult::kJoined) {
        std::vector<Joined> rows;
        Status fit = where->Observe(p, items[i].target, "feedback[" + std::to_string(i) + "].target", now, &rows);
        if (fit.ok()) {
          for (auto& r : rows) where->joined.push_back(std::move(r));
          where->Trim(now);
          where->dirty = true;
        } else {
          result = JoinResult::kUnknown;  // replaced by a new answer of another shape since pass 1
        }
      }
    } else {
      // Not pending anywhere: the most telling reason a version gives (it was joined
      // before, it expired, it was evicted) over "unknown".
      int best = 0;
      for (const auto& s : states) {
        std::lock_guard lock(s->mu);
        StoredPrediction ignored;
        JoinResult r = s->store.Take(items[i].id, now, &ignored);
        const int rank = r == JoinResult::kDuplicate ? 3 : r == JoinResult::kExpired ? 2 : r == JoinResult::kEvicted ? 1 : 0;
        if (where == nullptr || rank > best) {
          best = rank;
          result = r;
          where = s.get();
        }
      }
    }
    const std::string name(JoinResultName(result));
    ++counts[name];
    {
      std::lock_guard lock(where->mu);
      ++where->results[name];
    }
    if (series_) series_->Feedback(where->model, where->version, name, 1);
    if (result == JoinResult::kJoined) continue;
    std::string why = "feedback[" + std::to_string(i) + "].id: '" + items[i].id + "' ";
    switch (result) {
      case JoinResult::kDuplicate: why += "was already joined (duplicate feedback)"; break;
      case JoinResult::kExpired: why += "expired (its prediction waited longer than feedback.ttl_s)"; break;
      case JoinResult::kEvicted: why += "was evicted (more than feedback.max_pending predictions waited)"; break;
      default:
        why += "is unknown (no request with this id was answered by model '" + std::string(model) + "'" +
               (version.empty() ? "" : " version '" + std::string(version) + "'") + ", or it was forgotten)";
    }
    if (first_error.empty()) first_error = why;
    w.StartObject();
    w.Key("index");
    w.Uint64(i);
    w.Key("id");
    Str(w, items[i].id);
    w.Key("result");
    Str(w, name);
    w.Key("error");
    Str(w, why);
    w.EndObject();
  }
  w.EndArray();
  for (const char* r : {"joined", "unknown", "expired", "evicted", "duplicate"}) {
    w.Key(r);
    w.Uint64(counts[r]);
  }
  if (!first_error.empty()) {
    w.Key("error");
    Str(w, first_error);
  }
  w.EndObject();
  FeedbackReply reply;
  reply.json.assign(buf.GetString(), buf.GetSize());
  reply.all_joined = first_error.empty();
  return reply;
}

Result<std::string> FeedbackMonitor::SnapshotJson(std::string_view model, std::string_view version) const {
  std::vector<std::shared_ptr<VersionState>> states;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, s] : versions_) {
      if (key.first == model && (version.empty() || key.second == version)) states.push_back(s);
    }
  }
  if (states.empty()) {
    return NotFound("model '" + std::string(model) + "'" +
                    (version.empty() ? "" : " version '" + std::string(version) + "'") + " has no feedback monitoring");
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("model");
  Str(w, model);
  w.Key("versions");
  w.StartArray();
  const uint64_t now = options_.clock->NowNanos();
  for (const auto& sp : states) {
    VersionState& s = *sp;
    std::lock_guard lock(s.mu);
    s.store.Expire(now);
    s.Trim(now);
    const VersionState::Now q = s.Compute();
    w.StartObject();
    w.Key("version");
    Str(w, s.version);
    w.Key("feedback");
    w.StartObject();
    w.Key("output");
    Str(w, s.settings.output);
    w.Key("kind");
    w.String(KindName(s.kind));
    w.Key("max_pending");
    w.Uint64(s.settings.max_pending);
    w.Key("ttl_s");
    w.Double(static_cast<double>(s.settings.ttl_ns) / 1e9);
    w.Key("pending");
    w.Uint64(s.store.pending());
    w.Key("predictions_total");
    w.Uint64(s.stored_total);
    w.Key("unreadable_total");
    w.Uint64(s.unreadable_total);
    w.Key("evicted_total");
    w.Uint64(s.store.evicted());
    w.Key("expired_total");
    w.Uint64(s.store.expired());
    w.Key("results");
    w.StartObject();
    for (const char* r : {"joined", "unknown", "expired", "evicted", "duplicate"}) {
      w.Key(r);
      auto it = s.results.find(r);
      w.Uint64(it == s.results.end() ? 0 : it->second);
    }
    w.EndObject();
    w.EndObject();

    w.Key("quality");
    w.StartObject();
    w.Key("window");
    w.StartObject();
    if (s.settings.window_is_time) {
      w.Key("seconds");
      w.Double(static_cast<double>(s.settings.window_ns) / 1e9);
    } else {
      w.Key("rows");
      w.Uint64(s.settings.window_rows);
    }
    w.EndObject();
    w.Key("rows");
    w.Uint64(s.joined.size());
    const bool have = !s.joined.empty();
    auto value = [&](const char* key, std::optional<double> v) {
      w.Key(key);
      Num(w, have ? v : std::nullopt);
    };
    w.Key("realised");
    if (q.classification) {
      const auto& c = *q.classification;
      w.StartObject();
      w.Key("task");
      w.String("classification");
      w.Key("classes");
      w.Int(s.classes());
      w.Key("average");
      w.String(s.positive() >= 0 ? "binary" : "macro");
      if (s.kind == Kind::kLabels) {
        w.Key("labels");
        w.StartArray();
        for (const auto& l : s.labels) Str(w, l);
        w.EndArray();
      }
      value("accuracy", c.accuracy);
      value("precision", c.precision);
      value("recall", c.recall);
      value("f1", c.f1);
      value("roc_auc", c.roc_auc);
      value("log_loss", c.log_loss);
      w.EndObject();
    } else if (q.regression) {
      const auto& r = *q.regression;
      w.StartObject();
      w.Key("task");
      w.String("regression");
      w.Key("outputs");
      w.Uint(s.width);
      value("rmse", r.rmse);
      value("mae", r.mae);
      value("r2", r.r2);
      w.EndObject();
    } else {
      w.Null();
    }
    w.Key("estimated");
    if (q.estimate) {
      const auto& e = *q.estimate;
      const bool any = e.rows > 0;
      w.StartObject();
      w.Key("method");
      w.String("cbpe");
      w.Key("calibration");
      Str(w, s.calibration);
      w.Key("rows");
      w.Uint64(e.rows);
      w.Key("accuracy");
      Num(w, any ? std::optional(e.accuracy) : std::nullopt);
      w.Key("precision");
      Num(w, any ? std::optional(e.precision) : std::nullopt);
      w.Key("recall");
      Num(w, any ? std::optional(e.recall) : std::nullopt);
      w.Key("f1");
      Num(w, any ? std::optional(e.f1) : std::nullopt);
      w.Key("roc_auc");
      Num(w, e.roc_auc);
      w.EndObject();
    } else {
      w.Null();
    }
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace ferry::monitoring::quality
