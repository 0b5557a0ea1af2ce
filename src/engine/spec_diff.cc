#include "engine/spec_diff.h"

#include <algorithm>

namespace ferry::engine {
namespace {

const RevisionSpec* FindRevision(const DeploymentSpec& d, const std::string& name) {
  for (const auto& r : d.revisions)
    if (r.name == name) return &r;
  return nullptr;
}

std::vector<std::string> ProcessDifferences(const RevisionSpec& a, const RevisionSpec& b) {
  std::vector<std::string> why;
  if (a.model_repositories != b.model_repositories || a.model_folders != b.model_folders ||
      a.model_names != b.model_names)
    why.push_back("models");
  if (a.serve_options != b.serve_options) why.push_back("serve");
  if (a.env != b.env) why.push_back("env");
  return why;
}

bool SameAutoscaling(const AutoscalingPolicy& a, const AutoscalingPolicy& b) {
  return a.enabled == b.enabled && a.target_in_flight == b.target_in_flight && a.stable_window == b.stable_window &&
         a.panic_window == b.panic_window && a.panic_threshold == b.panic_threshold &&
         a.scale_up_delay == b.scale_up_delay && a.scale_down_delay == b.scale_down_delay &&
         a.scale_to_zero_after == b.scale_to_zero_after && a.target_p95 == b.target_p95 &&
         a.latency_window == b.latency_window;
}

std::string JoinList(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

bool SameProcesses(const RevisionSpec& a, const RevisionSpec& b) { return ProcessDifferences(a, b).empty(); }

bool DeploymentDiff::IsReplaced(const std::string& revision) const {
  return std::any_of(replaced.begin(), replaced.end(), [&](const Replaced& r) { return r.revision == revision; });
}

std::string DeploymentDiff::Describe() const {
  std::vector<std::string> parts;
  if (!replaced.empty()) {
    std::string s = "replaces ";
    for (size_t i = 0; i < replaced.size(); ++i)
      s += (i ? ", " : "") + replaced[i].revision + " (" + JoinList(replaced[i].reasons) + ")";
    parts.push_back(s);
  }
  if (!added.empty()) parts.push_back("adds " + JoinList(added));
  if (!removed.empty()) parts.push_back("drops " + JoinList(removed));
  if (!in_place.empty()) parts.push_back("in place: " + JoinList(in_place));
  if (parts.empty()) return "no change";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

DeploymentDiff DiffDeployment(const DeploymentSpec& before, const DeploymentSpec& after) {
  DeploymentDiff diff;
  const bool cpusets_changed = before.cpusets != after.cpusets;
  for (const auto& rev : after.revisions) {
    const RevisionSpec* old = FindRevision(before, rev.name);
    if (!old) {
      diff.added.push_back(rev.name);
      continue;
    }
    std::vector<std::string> why = ProcessDifferences(*old, rev);
    if (cpusets_changed) why.push_back("cpusets");
    if (why.empty()) diff.kept.push_back(rev.name);
    else diff.replaced.push_back({rev.name, std::move(why)});
  }
  for (const auto& rev : before.revisions)
    if (!FindRevision(after, rev.name)) diff.removed.push_back(rev.name);

  if (before.traffic != after.traffic) diff.in_place.push_back("traffic");
  if (before.replicas.min != after.replicas.min || before.replicas.max != after.replicas.max ||
      before.replicas.initial != after.replicas.initial)
    diff.in_place.push_back("replicas");
  if (!SameAutoscaling(before.autoscaling, after.autoscaling)) diff.in_place.push_back("autoscaling");
  if (before.health.ready_timeout != after.health.ready_timeout ||
      before.health.probe_interval != after.health.probe_interval)
    diff.in_place.push_back("health");
  if (before.drain.grace != after.drain.grace || before.drain.kill_after != after.drain.kill_after)
    diff.in_place.push_back("drain");
  if (before.restart.initial_backoff != after.restart.initial_backoff ||
      before.restart.max_backoff != after.restart.max_backoff ||
      before.restart.crash_loop_failures != after.restart.crash_loop_failures ||
      before.restart.crash_loop_window != after.restart.crash_loop_window)
    diff.in_place.push_back("restart");
  if (before.gateway.max_in_flight != after.gateway.max_in_flight ||
      before.gateway.request_timeout != after.gateway.request_timeout ||
      before.gateway.cold_start_timeout != after.gateway.cold_start_timeout ||
      before.gateway.max_concurrency != after.gateway.max_concurrency ||
      before.gateway.max_queue != after.gateway.max_queue || before.gateway.queue_timeout != after.gateway.queue_timeout)
    diff.in_place.push_back("gateway");
  if (before.rollout.progress_deadline != after.rollout.progress_deadline ||
      before.rollout.max_surge != after.rollout.max_surge ||
      before.rollout.max_surge_percent != after.rollout.max_surge_percent)
    diff.in_place.push_back("rollout");
  return diff;
}

}  // namespace ferry::engine
