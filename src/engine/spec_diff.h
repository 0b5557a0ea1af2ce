#pragma once

#include <string>
#include <vector>

#include "engine/spec.h"

namespace ferry::engine {

// What changed between the spec a deployment runs and a new one, and so how the engine
// applies it:
//  - a revision that is new, or whose processes would differ (models, model folders or
//    repositories, serve options, environment; for every revision: the deployment's
//    cpusets), needs new replicas: a rolling update (DeploymentController);
//  - everything else applies in place, on the running replicas: traffic weights, replica
//    bounds, autoscaling, health, drain, restart, gateway and rollout settings, and
//    revisions that are dropped (their replicas drain).
struct DeploymentDiff {
  struct Replaced {
    std::string revision;
    std::vector<std::string> reasons;  // "models", "serve", "env", "cpusets"
  };
  std::vector<std::string> added;      // revisions new in the new spec
  std::vector<Replaced> replaced;      // same name, new processes needed
  std::vector<std::string> removed;    // revisions the new spec drops
  std::vector<std::string> kept;       // same processes (maybe other settings)
  std::vector<std::string> in_place;   // settings that changed and apply in place: "traffic", "replicas", ...

  // New replicas must start (and be ready) before the change takes effect.
  bool rolling() const { return !added.empty() || !replaced.empty(); }
  bool changed() const { return rolling() || !removed.empty() || !in_place.empty(); }
  bool IsReplaced(const std::string& revision) const;
  // One line for people: "replaces v1 (models, serve); adds v2; drops v0; in place: traffic".
  std::string Describe() const;
};

// Pure: compares the parsed specs (resolved paths, not the YAML text), so the same
// deployment written differently (JSON or YAML, relative or absolute paths) is unchanged.
DeploymentDiff DiffDeployment(const DeploymentSpec& before, const DeploymentSpec& after);

// True when the two revisions would run the same `ferry serve` processes.
bool SameProcesses(const RevisionSpec& a, const RevisionSpec& b);

}  // namespace ferry::engine
