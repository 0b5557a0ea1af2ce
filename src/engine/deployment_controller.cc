#include "engine/deployment_controller.h"

#include <rapidjson/writer.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/log.h"
#include "engine/surge_step.h"

namespace ferry::engine {
namespace fs = std::filesystem;
namespace {

uint64_t Nanos(Millis m) { return static_cast<uint64_t>(m.count()) * 1'000'000; }

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

const RevisionSpec* FindRevision(const DeploymentSpec& d, const std::string& name) {
  for (const auto& r : d.revisions)
    if (r.name == name) return &r;
  return nullptr;
}

bool SafeName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

const RevisionStatus* FindStatus(const std::vector<RevisionStatus>& report, const std::string& deployment,
                                 const std::string& key) {
  for (const auto& r : report)
    if (r.deployment == deployment && r.key == key) return &r;
  return nullptr;
}

template <typename W>
void WriteRevision(W& w, const RevisionStatus& rev, const std::string& role, int64_t generation) {
  w.StartObject();
  w.Key("deployment");
  w.String(rev.deployment.c_str());
  w.Key("revision");
  w.String(rev.revision.c_str());
  w.Key("instance");
  w.String(rev.key.c_str());
  w.Key("generation");
  w.Int64(generation);
  w.Key("role");
  w.String(role.c_str());
  w.Key("desired");
  w.Int(rev.desired);
  w.Key("ready");
  w.Int(rev.ready);
  w.Key("degraded");
  w.Bool(rev.degraded);
  w.Key("degraded_reason");
  w.String(rev.degraded_reason.c_str());
  w.Key("replicas");
  w.StartArray();
  for (const auto& r : rev.replicas) {
    w.StartObject();
    w.Key("index");
    w.Int(r.index);
    w.Key("pid");
    w.Int64(r.pid);
    w.Key("port");
    w.Uint(r.http_port);
    w.Key("grpc_port");
    w.Uint(r.grpc_port);
    w.Key("metrics_port");
    w.Uint(r.metrics_port);
    w.Key("state");
    w.String(std::string(ReplicaStateName(r.state)).c_str());
    w.Key("in_flight");
    w.Int(r.outstanding);
    w.Key("restarts");
    w.Int(r.restarts);
    w.Key("log");
    w.String(r.log_path.c_str());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace

DeploymentController::DeploymentController(Supervisor* supervisor, StateStore* store, EngineMetrics* metrics,
                                           const Clock* clock, std::string state_dir)
    : supervisor_(supervisor), store_(store), metrics_(metrics), clock_(clock), state_dir_(std::move(state_dir)) {}

DeploymentController::Live* DeploymentController::Find(const std::string& name) {
  for (auto& d : live_)
    if (d->name == name) return d.get();
  return nullptr;
}

std::string DeploymentController::UniqueKey(const std::string& deployment, const std::string& revision,
                                            int64_t generation) const {
  std::set<std::string> used;
  for (const auto& d : live_)
    if (d->name == deployment)
      for (const auto& i : d->instances) used.insert(i.key);
  for (const auto& o : orphans_)
    if (o.deployment == deployment) used.insert(o.key);
  const std::string base = revision + "@" + std::to_string(generation);
  std::string key = base;
  for (int n = 2; used.count(key); ++n) key = base + "-" + std::to_string(n);
  return key;
}

Status DeploymentController::AddInstance(Live& d, const std::shared_ptr<const DeploymentSpec>& spec,
                                         const std::string& revision, Role role, int count) {
  Instance i;
  i.revision = revision;
  i.generation = role == Role::kIncoming ? d.generation : d.serving_generation;
  i.key = UniqueKey(d.name, revision, i.generation);
  i.role = role;
  i.target = count;
  FERRY_RETURN_IF_ERROR(supervisor_->AddRevision(spec, revision, count, i.key));
  d.instances.push_back(std::move(i));
  if (role == Role::kServing) ResetAutoscaler(d, d.instances.back());
  FERRY_LOG(kInfo, "deployment revision", ("deployment", d.name)("revision", revision)("instance", d.instances.back().key)
                                              ("replicas", count)("models", FindRevision(*spec, revision)->model_names.size())
                                              ("role", role == Role::kIncoming ? "incoming" : "serving"));
  return Status::Ok();
}

void DeploymentController::ResetAutoscaler(Live& d, Instance& i) {
  i.autoscaler.reset();
  if (!d.pinned) i.autoscaler = std::make_unique<Autoscaler>(d.serving->autoscaling, d.serving->replicas, clock_);
}

void DeploymentController::Event(const Live& d, int64_t generation, const std::string& kind,
                                 const std::string& message) {
  if (kind == "failed")
    FERRY_LOG(kWarning, "deployment " + kind, ("deployment", d.name)("generation", generation)("detail", message));
  else
    FERRY_LOG(kInfo, "deployment " + kind, ("deployment", d.name)("generation", generation)("detail", message));
  if (metrics_) metrics_->RolloutEvent(d.name, kind);
  Status st = store_->RecordRolloutEvent({0, d.name, generation, kind, message});
  if (!st.ok()) FERRY_LOG(kWarning, "cannot record a rollout event", ("error", st.message()));
}

void DeploymentController::RecordScale(const std::string& deployment, const std::string& revision, int from, int to,
                                      const std::string& reason) {
  FERRY_LOG(kInfo, "scaling", ("deployment", deployment)("revision", revision)("from", from)("to", to)("reason", reason));
  Status st = store_->RecordScaleEvent({0, deployment, revision, from, to, reason});
  if (!st.ok()) FERRY_LOG(kWarning, "cannot record a scale event", ("error", st.message()));
  if (metrics_) metrics_->ScaleEvent(deployment, revision);
}

void DeploymentController::SetActive(Live& d) {
  Status st = store_->SetActive(d.name, d.serving->source_yaml, d.serving_file, d.serving_generation);
  if (!st.ok()) FERRY_LOG(kWarning, "cannot record the active spec", ("deployment", d.name)("error", st.message()));
}

void DeploymentController::Create(Live& d) {
  d.serving = d.desired;
  d.serving_generation = d.generation;
  d.serving_file = d.file;
  d.state = State::kRolling;
  d.creating = true;
  d.rollout_generation = d.generation;
  d.rollout_started = clock_->NowNanos();
  d.rollout_deadline = d.rollout_started + Nanos(d.serving->rollout.progress_deadline);
  d.message = "starting generation " + std::to_string(d.generation);
  for (const auto& r : d.serving->revisions) {
    Status st = AddInstance(d, d.serving, r.name, Role::kServing, d.pinned ? *d.pinned : d.serving->replicas.initial);
    if (!st.ok()) FERRY_LOG(kError, "cannot supervise a revision", ("deployment", d.name)("error", st.message()));
  }
}

Status DeploymentController::Init(std::vector<DeploymentInit> deployments) {
  for (auto& init : deployments) {
    auto d = std::make_unique<Live>();
    d->name = init.name;
    d->pinned = init.pinned;
    const bool has_active = init.active != nullptr;
    d->desired = has_active ? init.active : init.desired;
    d->generation = has_active ? init.active_generation : init.generation;
    d->file = has_active ? init.active_file : init.file;
    Create(*d);
    // The active spec did roll out once: a restart brings it back first, then rolls the
    // newer desired one out as a live update would.
    Live& live = *d;
    live_.push_back(std::move(d));
    if (has_active && init.generation != init.active_generation) {
      ApplyOutcome out;
      Update(live, init.desired, init.generation, init.file, /*retry=*/false, &out);
    }
  }
  PublishView();
  return Status::Ok();
}

Result<std::vector<ApplyOutcome>> DeploymentController::Apply(std::vector<DeploymentSpec> specs,
                                                              const std::string& file, bool prune,
                                                              std::vector<std::string>* deleted) {
  std::set<std::string> changing;
  for (const auto& s : specs) changing.insert(s.name);
  std::vector<std::string> pruned;
  if (prune)
    for (const auto& d : live_)
      if (!changing.count(d->name)) pruned.push_back(d->name);

  // A model name routes to one deployment: one outside this change (serving it, about to,
  // or asked to) keeps it.
  for (const auto& s : specs)
    for (const auto& rev : s.revisions)
      for (const auto& m : rev.model_names)
        for (const auto& d : live_) {
          if (changing.count(d->name) || Contains(pruned, d->name)) continue;
          bool claims = false;
          for (const auto* spec : {d->serving.get(), d->desired.get()})
            for (const auto& r : spec->revisions) claims = claims || Contains(r.model_names, m);
          if (claims)
            return Status(StatusCode::kAlreadyExists,
                          "model '" + m + "' is already served by deployment '" + d->name + "'; deployment '" +
                              s.name + "' cannot serve it too (the gateway routes a model name to one deployment)");
        }

  std::vector<DeploymentPut> puts;
  for (const auto& s : specs) puts.push_back({s.name, s.source_yaml, file});
  FERRY_ASSIGN_OR_RETURN(auto stored, store_->WriteDeployments(puts, pruned));

  std::vector<ApplyOutcome> outcomes;
  for (size_t k = 0; k < specs.size(); ++k) {
    auto spec = std::make_shared<const DeploymentSpec>(std::move(specs[k]));
    ApplyOutcome out;
    out.name = spec->name;
    out.generation = stored[k].generation;
    Live* d = Find(spec->name);
    if (!d) {
      auto fresh = std::make_unique<Live>();
      fresh->name = spec->name;
      fresh->desired = spec;
      fresh->generation = out.generation;
      fresh->file = file;
      Create(*fresh);
      Event(*fresh, out.generation, "created", "revisions: " + std::to_string(spec->revisions.size()));
      live_.push_back(std::move(fresh));
      out.change = "created";
      out.message = "starting its replicas";
    } else if (!stored[k].changed) {
      if (d->state == State::kFailed && !d->creating && d->rollout_generation == out.generation) {
        Update(*d, spec, out.generation, file, /*retry=*/true, &out);
      } else {
        out.change = "unchanged";
        out.message = "the stored spec is the same";
      }
    } else {
      Update(*d, spec, out.generation, file, /*retry=*/false, &out);
    }
    outcomes.push_back(std::move(out));
  }
  for (const auto& name : pruned) {
    Live* d = Find(name);
    for (auto& i : d->instances) {
      supervisor_->SetDesired(name, i.key, 0);
      orphans_.push_back({name, i.key});
    }
    Event(*d, d->generation, "deleted", "not in the applied spec (prune)");
    live_.erase(std::remove_if(live_.begin(), live_.end(), [&](const auto& l) { return l->name == name; }), live_.end());
    if (deleted) deleted->push_back(name);
  }
  PublishView();
  return outcomes;
}

void DeploymentController::Update(Live& d, std::shared_ptr<const DeploymentSpec> spec, int64_t generation,
                                  const std::string& file, bool retry, ApplyOutcome* out) {
  if (d.state == State::kRolling && !d.creating) {
    const std::string restored = RestoreReplaced(d);
    for (auto& i : d.instances)
      if (i.role == Role::kIncoming) Retire(d, i);
    Event(d, d.rollout_generation, "superseded", "superseded by generation " + std::to_string(generation) + restored);
  }
  d.desired = std::move(spec);
  d.generation = generation;
  d.file = file;
  DeploymentDiff diff = DiffDeployment(*d.serving, *d.desired);
  out->message = diff.Describe();
  if (!diff.rolling()) {
    ApplyInPlace(d, diff);
    out->change = "in_place";
    return;
  }
  const uint64_t now = clock_->NowNanos();
  d.creating = false;
  d.state = State::kRolling;
  d.rollout_generation = generation;
  d.rollout_started = now;
  d.rollout_deadline = now + Nanos(d.desired->rollout.progress_deadline);
  d.diff = diff;
  // What runs now, to size the new instances: surge to as much as serves today.
  int running = 0, weights = 0;
  for (const auto& i : d.instances)
    if (i.role == Role::kServing) running += supervisor_->Desired(d.name, i.key);
  for (const auto& [rev, w] : d.desired->traffic) weights += w;
  const ReplicaBounds& bounds = d.desired->replicas;
  for (const auto& r : d.desired->revisions) {
    const bool replaced = d.diff.IsReplaced(r.name);
    if (!replaced && !Contains(d.diff.added, r.name)) continue;
    // A new revision: its traffic share of the replicas running now (a renamed revision
    // takes over all of them), at least its initial count.
    auto w = d.desired->traffic.find(r.name);
    const int share = weights > 0 && w != d.desired->traffic.end()
                          ? static_cast<int>((static_cast<int64_t>(running) * w->second + weights - 1) / weights)
                          : 0;
    int count = std::max(1, std::clamp(std::max(bounds.initial, share), bounds.min, bounds.max));
    if (replaced) {
      // As many as the old instance runs now, within the new bounds.
      for (const auto& i : d.instances)
        if (i.role == Role::kServing && i.revision == r.name)
          count = std::max(1, std::clamp(supervisor_->Desired(d.name, i.key), d.desired->replicas.min,
                                         d.desired->replicas.max));
    }
    if (d.pinned) count = *d.pinned;
    // Replaced in steps when the surge is below the count: the new instance starts empty
    // and StepReplacements grows it (and shrinks the old one) from the first tick on.
    Instance* old = nullptr;
    for (auto& i : d.instances)
      if (replaced && i.role == Role::kServing && i.revision == r.name) old = &i;
    const bool stepped = old != nullptr && d.desired->rollout.SurgeFor(count) < count;
    if (stepped) {
      old->replacing = true;
      old->restore = supervisor_->Desired(d.name, old->key);
    }
    Status st = AddInstance(d, d.desired, r.name, Role::kIncoming, stepped ? 0 : count);
    if (!st.ok()) {
      FailRollout(d, "cannot start revision '" + r.name + "': " + st.message());
      out->change = "rolling";
      return;
    }
    d.instances.back().target = count;
    d.instances.back().stepped = stepped;
  }
  StepReplacements(d, supervisor_->StatusReport());
  int wanted = 0;
  for (const auto& i : d.instances)
    if (i.role == Role::kIncoming) wanted += i.target;
  d.message = "rolling out generation " + std::to_string(generation) + " (" + diff.Describe() + "): 0 of " +
              std::to_string(wanted) + " replicas ready";
  Event(d, generation, retry ? "retrying" : "rolling", diff.Describe());
  out->change = retry ? "retrying" : "rolling";
}

void DeploymentController::ApplyInPlace(Live& d, const DeploymentDiff& diff) {
  for (auto& i : d.instances) {
    if (i.role != Role::kServing) continue;
    if (Contains(diff.removed, i.revision)) {
      Retire(d, i);
      continue;
    }
    Status st = supervisor_->UpdateDeployment(i.key, d.desired);
    if (!st.ok()) FERRY_LOG(kError, "cannot update a revision in place", ("deployment", d.name)("error", st.message()));
  }
  d.serving = d.desired;
  d.serving_generation = d.generation;
  d.serving_file = d.file;
  const bool bounds = Contains(diff.in_place, "replicas") || Contains(diff.in_place, "autoscaling");
  for (auto& i : d.instances) {
    if (i.role != Role::kServing) continue;
    i.generation = d.generation;
    if (!bounds) continue;
    ResetAutoscaler(d, i);
    if (d.pinned) continue;
    const int from = supervisor_->Desired(d.name, i.key);
    const int to = std::clamp(from, d.serving->replicas.min, d.serving->replicas.max);
    if (to != from) {
      RecordScale(d.name, i.revision, from, to, "spec update: replicas within [min, max]");
      supervisor_->SetDesired(d.name, i.key, to);
    }
  }
  if (!d.creating) {
    d.state = State::kReady;
    d.rollout_generation = d.generation;
    d.message = "generation " + std::to_string(d.generation) + " serves (updated in place)";
    SetActive(d);
  }
  Event(d, d.generation, "in_place", diff.changed() ? diff.Describe() : "no change to the running replicas");
}

void DeploymentController::Retire(Live& d, Instance& i) {
  i.role = Role::kRetiring;
  i.stepped = i.replacing = false;
  i.autoscaler.reset();
  supervisor_->SetDesired(d.name, i.key, 0);
}

void DeploymentController::CutOver(Live& d) {
  std::vector<std::string> drained;
  for (auto& i : d.instances) {
    if (i.role != Role::kServing) continue;
    if (d.diff.IsReplaced(i.revision) || Contains(d.diff.removed, i.revision)) {
      Retire(d, i);
      drained.push_back(i.key);
    } else {
      Status st = supervisor_->UpdateDeployment(i.key, d.desired);
      if (!st.ok()) FERRY_LOG(kError, "cannot update a revision in place", ("deployment", d.name)("error", st.message()));
    }
  }
  d.serving = d.desired;
  d.serving_generation = d.rollout_generation;
  d.serving_file = d.file;
  const bool bounds = Contains(d.diff.in_place, "replicas") || Contains(d.diff.in_place, "autoscaling");
  for (auto& i : d.instances) {
    if (i.role == Role::kIncoming) {
      i.role = Role::kServing;
      i.stepped = false;
      ResetAutoscaler(d, i);
    } else if (i.role == Role::kServing && bounds) {
      ResetAutoscaler(d, i);
      if (!d.pinned) {
        const int from = supervisor_->Desired(d.name, i.key);
        const int to = std::clamp(from, d.serving->replicas.min, d.serving->replicas.max);
        if (to != from) supervisor_->SetDesired(d.name, i.key, to);
      }
    }
  }
  d.state = State::kReady;
  std::string drains;
  for (const auto& k : drained) drains += (drains.empty() ? "" : ", ") + k;
  d.message = "generation " + std::to_string(d.serving_generation) + " serves: " + d.diff.Describe() +
              (drains.empty() ? "" : "; draining " + drains);
  const double secs = static_cast<double>(clock_->NowNanos() - d.rollout_started) / 1e9;
  char took[32];
  std::snprintf(took, sizeof took, " (%.1f s)", secs);
  SetActive(d);
  Event(d, d.serving_generation, "rolled_out", d.message + took);
}

void DeploymentController::FailRollout(Live& d, const std::string& why) {
  const std::string restored = RestoreReplaced(d);
  for (auto& i : d.instances)
    if (i.role == Role::kIncoming) Retire(d, i);
  d.state = State::kFailed;
  d.message = "generation " + std::to_string(d.rollout_generation) + " failed: " + why + "; generation " +
              std::to_string(d.serving_generation) + " keeps serving" + restored;
  Event(d, d.rollout_generation, "failed", d.message);
}

std::string DeploymentController::RestoreReplaced(Live& d) {
  std::string what;
  for (auto& i : d.instances) {
    if (i.role != Role::kServing || !i.replacing) continue;
    i.replacing = false;
    const int now = supervisor_->Desired(d.name, i.key);
    if (now < i.restore) {
      RecordScale(d.name, i.revision, now, i.restore, "rollout stopped: the replicas its steps replaced start again");
      supervisor_->SetDesired(d.name, i.key, i.restore);
      what += "; " + i.key + " back from " + std::to_string(now) + " to " + std::to_string(i.restore) +
              " replicas (the new ones that had replaced them drain)";
    }
  }
  return what;
}

bool DeploymentController::StepReplacements(Live& d, const std::vector<RevisionStatus>& report) {
  bool changed = false;
  for (auto& n : d.instances) {
    if (n.role != Role::kIncoming || !n.stepped) continue;
    Instance* old = nullptr;
    for (auto& i : d.instances)
      if (i.role == Role::kServing && i.replacing && i.revision == n.revision) old = &i;
    SurgeState st;
    st.target = n.target;
    st.surge = d.desired->rollout.SurgeFor(n.target);
    st.new_desired = supervisor_->Desired(d.name, n.key);
    st.new_ready = supervisor_->ReadyCount(d.name, n.key);
    if (old) {
      st.old_desired = supervisor_->Desired(d.name, old->key);
      // Processes, not slots: a draining or stopping replica still holds its memory.
      if (const RevisionStatus* rs = FindStatus(report, d.name, old->key))
        for (const auto& r : rs->replicas) st.old_alive += r.pid > 0;
    }
    const SurgeStep next = NextSurgeStep(st);
    if (next.new_desired != st.new_desired) {
      supervisor_->SetDesired(d.name, n.key, next.new_desired);
      changed = true;
    }
    if (old && next.old_desired != st.old_desired) {
      const std::string step = std::to_string(st.new_ready) + " of " + std::to_string(n.target) + " new replicas of " +
                               n.key + " ready";
      RecordScale(d.name, old->revision, st.old_desired, next.old_desired, "rollout step: " + step);
      Event(d, d.rollout_generation, "step",
            step + "; " + old->key + " down to " + std::to_string(next.old_desired) + " (rollout.max_surge " +
                std::to_string(st.surge) + ")");
      supervisor_->SetDesired(d.name, old->key, next.old_desired);
      changed = true;
    }
  }
  return changed;
}

void DeploymentController::Autoscale(Live& d) {
  for (auto& i : d.instances) {
    // An instance being replaced in steps has its count set by the steps.
    if (i.role != Role::kServing || !i.autoscaler || i.replacing) continue;
    auto load = supervisor_->Load(d.name, i.key);
    const uint64_t arrivals = load ? load->arrivals.load() : 0;
    // Requests held at the gateway for want of a replica count for every revision with
    // traffic: that is what wakes a revision scaled to zero.
    auto w = d.serving->traffic.find(i.revision);
    const int waiting = w != d.serving->traffic.end() && w->second > 0 ? d.load->waiting.load() : 0;
    // The latencies of the requests answered since the last tick (for the latency objective).
    LatencyHistogram::Counts latency{};
    if (load) {
      const LatencyHistogram::Counts now = load->latency.Read();
      for (int b = 0; b < LatencyHistogram::kBuckets; ++b) latency[b] = now[b] - i.last_latency[b];
      i.last_latency = now;
    }
    i.autoscaler->Observe(supervisor_->InFlight(d.name, i.key) + waiting, arrivals - i.last_arrivals, &latency);
    i.last_arrivals = arrivals;
    const int current = supervisor_->Desired(d.name, i.key);
    ScaleDecision dec = i.autoscaler->Decide(current, supervisor_->ReadyCount(d.name, i.key));
    if (dec.desired != current) {
      RecordScale(d.name, i.revision, current, dec.desired, dec.reason);
      supervisor_->SetDesired(d.name, i.key, dec.desired);
    }
  }
}

bool DeploymentController::Progress(Live& d, const std::vector<RevisionStatus>& report) {
  if (d.state == State::kReady) return false;
  const uint64_t now = clock_->NowNanos();
  const Role role = d.creating ? Role::kServing : Role::kIncoming;
  int ready = 0, wanted = 0;
  std::string degraded;
  bool all = true;
  for (const auto& i : d.instances) {
    if (i.role != role) continue;
    const int want = d.creating ? supervisor_->Desired(d.name, i.key) : i.target;
    const int have = supervisor_->ReadyCount(d.name, i.key);
    ready += std::min(have, want);
    wanted += want;
    all = all && have >= want;
    const RevisionStatus* st = FindStatus(report, d.name, i.key);
    if (st && st->degraded && degraded.empty()) {
      // The reason without its log lines: those stay in the restart events.
      const std::string reason = st->degraded_reason.substr(0, st->degraded_reason.find("; last log lines:"));
      degraded = "revision '" + i.revision + "' (" + i.key + ") is crash-looping: " + reason;
    }
  }
  const std::string progress = std::to_string(ready) + " of " + std::to_string(wanted) + " replicas ready";
  if (d.creating) {
    if (all) {
      d.state = State::kReady;
      d.message = "generation " + std::to_string(d.serving_generation) + " serves: " + progress;
      SetActive(d);
      Event(d, d.serving_generation, "rolled_out", d.message);
      return false;
    }
    if (d.state == State::kRolling && (!degraded.empty() || now > d.rollout_deadline)) {
      d.state = State::kFailed;
      d.message = "generation " + std::to_string(d.serving_generation) + " is not ready: " +
                  (!degraded.empty() ? degraded
                                     : "not ready within rollout.progress_deadline (" +
                                           std::to_string(d.serving->rollout.progress_deadline.count() / 1000) +
                                           " s), " + progress) +
                  " (its replicas keep restarting)";
      Event(d, d.serving_generation, "failed", d.message);
    } else if (d.state == State::kRolling) {
      d.message = "starting generation " + std::to_string(d.serving_generation) + ": " + progress;
    }
    return false;
  }
  if (d.state != State::kRolling) return false;
  if (all) {
    CutOver(d);
    return true;
  }
  StepReplacements(d, report);
  if (!degraded.empty()) {
    FailRollout(d, degraded);
    return false;
  }
  if (now > d.rollout_deadline) {
    FailRollout(d, "not ready within rollout.progress_deadline (" +
                       std::to_string(d.desired->rollout.progress_deadline.count() / 1000) + " s): " + progress);
    return false;
  }
  d.message = "rolling out generation " + std::to_string(d.rollout_generation) + " (" + d.diff.Describe() +
              "): " + progress;
  return false;
}

bool DeploymentController::Tick() {
  const auto report = supervisor_->StatusReport();
  bool changed = false;
  for (auto& d : live_) {
    Autoscale(*d);
    changed = Progress(*d, report) || changed;
    auto& v = d->instances;
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](const Instance& i) {
                             if (i.role != Role::kRetiring || !supervisor_->RemoveRevision(d->name, i.key)) return false;
                             FERRY_LOG(kInfo, "revision instance stopped", ("deployment", d->name)("instance", i.key)
                                                                              ("why", "drained"));
                             return true;
                           }),
            v.end());
  }
  orphans_.erase(std::remove_if(orphans_.begin(), orphans_.end(),
                                [&](const Orphan& o) {
                                  if (!supervisor_->RemoveRevision(o.deployment, o.key)) return false;
                                  FERRY_LOG(kInfo, "revision instance stopped",
                                            ("deployment", o.deployment)("instance", o.key)("why", "deleted"));
                                  return true;
                                }),
                 orphans_.end());
  PublishView();
  return changed;
}

Status DeploymentController::Delete(const std::string& name) {
  Live* d = Find(name);
  if (!d) return NotFound("deployment '" + name + "' is not deployed");
  FERRY_RETURN_IF_ERROR(store_->WriteDeployments({}, {name}).status());
  for (auto& i : d->instances) {
    supervisor_->SetDesired(name, i.key, 0);
    orphans_.push_back({name, i.key});
  }
  Event(*d, d->generation, "deleted", "deleted through the admin API");
  live_.erase(std::remove_if(live_.begin(), live_.end(), [&](const auto& l) { return l->name == name; }), live_.end());
  PublishView();
  return Status::Ok();
}

Status DeploymentController::Scale(const std::string& name, std::optional<int> replicas) {
  Live* d = Find(name);
  if (!d) return NotFound("deployment '" + name + "' is not deployed");
  FERRY_RETURN_IF_ERROR(store_->SetReplicaPin(name, replicas));
  d->pinned = replicas;
  for (auto& i : d->instances) {
    if (i.role == Role::kRetiring) continue;
    const int from = supervisor_->Desired(name, i.key);
    int to = from;
    if (i.role == Role::kIncoming) {
      if (replicas) i.target = *replicas;
      to = i.stepped ? from : i.target;  // a stepped one grows by its steps, to the new target
    } else if (i.replacing) {
      if (replicas) i.restore = *replicas;  // the steps set its count; a failure restores this
    } else {
      ResetAutoscaler(*d, i);
      to = replicas ? *replicas : std::clamp(from, d->serving->replicas.min, d->serving->replicas.max);
    }
    if (to != from) {
      if (i.role == Role::kServing)
        RecordScale(name, i.revision, from, to, replicas ? "pinned through the admin API" : "autoscaling resumed");
      supervisor_->SetDesired(name, i.key, to);
    }
  }
  Event(*d, d->generation, "scaled",
        replicas ? "pinned at " + std::to_string(*replicas) + " replicas per revision" : "autoscaled again");
  PublishView();
  return Status::Ok();
}

std::shared_ptr<RouteTable> DeploymentController::Routes() const {
  auto table = std::make_shared<RouteTable>();
  for (const auto& d : live_) {
    const DeploymentSpec& spec = *d->serving;
    auto route = std::make_shared<DeploymentRoute>();
    route->name = d->name;
    route->min_replicas = d->pinned ? *d->pinned : spec.replicas.min;
    route->max_in_flight = spec.gateway.max_in_flight;
    route->request_timeout_ms = spec.gateway.request_timeout.count();
    route->cold_start_timeout_ms = spec.gateway.cold_start_timeout.count();
    route->max_concurrency = spec.gateway.max_concurrency;
    route->max_queue = spec.gateway.max_queue;
    route->queue_timeout_ms = spec.gateway.queue_timeout.count();
    route->load = d->load;
    route->metrics = metrics_ ? metrics_->ForDeployment(d->name) : nullptr;
    for (const auto& i : d->instances) {
      if (i.role != Role::kServing) continue;
      RevisionRoute rr;
      rr.name = i.revision;
      auto w = spec.traffic.find(i.revision);
      rr.weight = w == spec.traffic.end() ? 0 : w->second;
      rr.replicas = supervisor_->Endpoints(d->name, i.key);
      // A revision replaced in steps: its new replicas take requests beside the old ones
      // as soon as they are ready (Pick skips those that are not).
      for (const auto& n : d->instances)
        if (n.role == Role::kIncoming && n.stepped && n.revision == i.revision)
          for (auto& e : supervisor_->Endpoints(d->name, n.key)) rr.replicas.push_back(std::move(e));
      if (metrics_)
        for (const auto& e : rr.replicas)
          if (!e->errors.load(std::memory_order_acquire))  // the id ends with the replica's index
            e->errors.store(metrics_->ForReplica(d->name, i.revision, e->id.substr(e->id.rfind('/') + 1)),
                            std::memory_order_release);
      rr.load = supervisor_->Load(d->name, i.key);
      if (!rr.load) rr.load = std::make_shared<RevisionLoad>();
      if (const RevisionSpec* r = FindRevision(spec, i.revision))
        for (const auto& m : r->model_names) table->by_model[m] = route;
      route->revisions.push_back(std::move(rr));
    }
    table->deployments.push_back(route);
  }
  return table;
}

Millis DeploymentController::LongestDrain() const {
  Millis longest{0};
  for (const auto& d : live_)
    for (const auto* s : {d->serving.get(), d->desired.get()})
      longest = std::max(longest, s->drain.grace + s->drain.kill_after);
  // Instances of deleted deployments drain under the defaults at most... or their own
  // settings, which are gone with the deployment: allow the defaults.
  if (!orphans_.empty()) longest = std::max(longest, DrainPolicy{}.grace + DrainPolicy{}.kill_after);
  return longest;
}

void DeploymentController::PublishView() {
  std::vector<View> views;
  for (const auto& d : live_) {
    View v;
    v.name = d->name;
    v.state = d->state == State::kReady ? "done" : d->state == State::kRolling ? "rolling" : "failed";
    v.message = d->message;
    v.file = d->file;
    v.yaml = d->desired->source_yaml;
    v.generation = d->generation;
    v.serving_generation = d->serving_generation;
    v.rollout_generation = d->rollout_generation;
    v.pinned = d->pinned;
    for (const auto& [rev, weight] : d->serving->traffic) v.traffic.emplace_back(rev, weight);
    for (const auto& i : d->instances) {
      InstanceView iv;
      iv.key = i.key;
      iv.revision = i.revision;
      iv.role = i.role == Role::kServing ? "serving" : i.role == Role::kIncoming ? "incoming" : "retiring";
      iv.generation = i.generation;
      iv.target = i.target;
      v.instances.push_back(std::move(iv));
    }
    views.push_back(std::move(v));
  }
  std::lock_guard lock(view_mu_);
  views_ = std::move(views);
  orphan_views_ = orphans_;
}

std::vector<std::string> DeploymentController::Names() const {
  std::lock_guard lock(view_mu_);
  std::vector<std::string> names;
  for (const auto& v : views_) names.push_back(v.name);
  return names;
}

namespace {

template <typename W, typename V>
void WriteDeploymentFields(W& w, const V& v) {
  w.Key("name");
  w.String(v.name.c_str());
  w.Key("generation");
  w.Int64(v.generation);
  w.Key("serving_generation");
  w.Int64(v.serving_generation);
  w.Key("pinned");
  if (v.pinned) w.Int(*v.pinned);
  else w.Null();
  w.Key("rollout");
  w.StartObject();
  w.Key("state");
  w.String(v.state.c_str());
  w.Key("generation");
  w.Int64(v.rollout_generation);
  w.Key("message");
  w.String(v.message.c_str());
  w.EndObject();
  w.Key("traffic");
  w.StartObject();
  for (const auto& [rev, weight] : v.traffic) {
    w.Key(rev.c_str());
    w.Int(weight);
  }
  w.EndObject();
  w.Key("spec_file");
  w.String(v.file.c_str());
}

}  // namespace

void DeploymentController::WriteStatus(rapidjson::PrettyWriter<rapidjson::StringBuffer>& w,
                                       const std::vector<RevisionStatus>& report) const {
  std::lock_guard lock(view_mu_);
  w.Key("deployments");
  w.StartArray();
  for (const auto& v : views_) {
    w.StartObject();
    WriteDeploymentFields(w, v);
    w.EndObject();
  }
  w.EndArray();
  w.Key("revisions");
  w.StartArray();
  for (const auto& rev : report) {
    std::string role = "retiring";
    int64_t generation = 0;
    for (const auto& v : views_)
      if (v.name == rev.deployment)
        for (const auto& i : v.instances)
          if (i.key == rev.key) {
            role = i.role;
            generation = i.generation;
          }
    WriteRevision(w, rev, role, generation);
  }
  w.EndArray();
}

std::optional<std::string> DeploymentController::DeploymentJson(const std::string& name,
                                                               const std::vector<RevisionStatus>& report) const {
  std::lock_guard lock(view_mu_);
  for (const auto& v : views_) {
    if (v.name != name) continue;
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    WriteDeploymentFields(w, v);
    w.Key("spec");
    w.String(v.yaml.c_str());
    w.Key("revisions");
    w.StartArray();
    for (const auto& i : v.instances)
      if (const RevisionStatus* st = FindStatus(report, v.name, i.key)) WriteRevision(w, *st, i.role, i.generation);
    w.EndArray();
    w.EndObject();
    return std::string(sb.GetString(), sb.GetSize());
  }
  return std::nullopt;
}

Result<LogTarget> DeploymentController::ResolveLogs(const std::string& name, const std::optional<std::string>& revision,
                                                    std::optional<int> replica,
                                                    const std::vector<RevisionStatus>& report) const {
  std::lock_guard lock(view_mu_);
  const View* v = nullptr;
  for (const auto& x : views_)
    if (x.name == name) v = &x;
  if (!v) return NotFound("deployment '" + name + "' is not deployed");
  LogTarget t;
  if (revision) {
    if (!SafeName(*revision))
      return InvalidArgument("query parameter 'revision' must be a revision name (letters, digits, '-', '_'), got '" +
                             *revision + "'");
    t.revision = *revision;
  } else {
    int best = -1;
    for (const auto& [rev, weight] : v->traffic)
      if (weight > best) {
        best = weight;
        t.revision = rev;
      }
  }
  const fs::path dir = fs::path(state_dir_) / "logs" / name / t.revision;
  if (replica) {
    t.replica = *replica;
  } else {
    // The first replica of the revision's serving instance, else the lowest log there is.
    std::optional<int> first;
    for (const auto& i : v->instances)
      if (i.revision == t.revision && i.role == "serving")
        if (const RevisionStatus* st = FindStatus(report, name, i.key))
          for (const auto& r : st->replicas)
            if (!first || r.index < *first) first = r.index;
    if (!first) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string f = e.path().filename().string();
        int index = -1;
        if (std::sscanf(f.c_str(), "replica-%d.log", &index) == 1 && f == "replica-" + std::to_string(index) + ".log" &&
            (!first || index < *first))
          first = index;
      }
    }
    if (!first) return NotFound("deployment '" + name + "' has no log of revision '" + t.revision + "' (" + dir.string() + ")");
    t.replica = *first;
  }
  t.path = (dir / ("replica-" + std::to_string(t.replica) + ".log")).string();
  std::error_code ec;
  if (!fs::exists(t.path, ec))
    return NotFound("deployment '" + name + "' has no log of replica " + std::to_string(t.replica) + " of revision '" +
                    t.revision + "' (" + t.path + ")");
  return t;
}

}  // namespace ferry::engine
