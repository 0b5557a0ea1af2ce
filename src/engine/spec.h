#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/yaml_reader.h"

namespace ferry::engine {

using Millis = std::chrono::milliseconds;

// One revision of a deployment: what its replicas serve and how `ferry serve` runs.
// A change of its models, serve options or environment needs new processes: the engine
// replaces the revision's replicas by a rolling update (spec_diff.h, deployment_controller.h).
struct RevisionSpec {
  std::string name;
  // Model repositories (each a folder of model folders), passed to every replica as
  // --model-repository. Relative paths are resolved against the spec file's folder.
  std::vector<std::string> model_repositories;
  // Single model folders; the engine serves them through a repository of links under
  // the state directory, so a model folder needs no repository around it.
  std::vector<std::string> model_folders;
  // `ferry serve` options, flag name without the dashes -> value ("http-threads": "2").
  // The flags the engine sets itself (addresses, ports, repositories) are refused.
  std::vector<std::pair<std::string, std::string>> serve_options;
  // Extra environment of the replica processes (added to the engine's own).
  std::vector<std::pair<std::string, std::string>> env;
  // The model names this revision serves, found at parse time from the folders.
  std::vector<std::string> model_names;
};

// Replica counts of each revision.
struct ReplicaBounds {
  int min = 1;
  int max = 1;
  int initial = 1;  // default: min, but 1 when min is 0 (a new deployment proves it starts)
};

// Knative-style concurrency autoscaling: desired = ceil(in-flight / target).
struct AutoscalingPolicy {
  bool enabled = true;
  double target_in_flight = 4;   // requests in flight per replica the autoscaler aims at
  Millis stable_window{60000};   // averaging window of the normal mode
  Millis panic_window{3000};     // short window that reacts to bursts (Knative: 6 s; 3 s reacts in half the time)
  double panic_threshold = 2.0;  // panic when panic-window demand >= threshold x ready replicas
  Millis scale_up_delay{0};      // a higher recommendation must hold this long
  Millis scale_down_delay{30000};  // a lower recommendation must hold this long
  Millis scale_to_zero_after{300000};  // idle time before the last replica goes (min 0 only)
  // Latency objective: keep the p95 of the gateway's request latency (routed to
  // answered) over latency_window under target_p95, adding a replica at a time; 0 = off.
  Millis target_p95{0};
  Millis latency_window{10000};
};

struct HealthPolicy {
  Millis ready_timeout{120000};  // a replica not ready by then is killed and restarted
  Millis probe_interval{200};    // readiness probe period while starting
};

struct DrainPolicy {
  Millis grace{30000};      // time in-flight requests get to finish after routing stops
  Millis kill_after{10000};  // SIGKILL this long after SIGTERM
};

struct RestartPolicy {
  Millis initial_backoff{500};  // delay before the first restart; doubles per failure
  Millis max_backoff{30000};    // cap of the delay
  int crash_loop_failures = 5;  // this many failures within the window ...
  Millis crash_loop_window{120000};  // ... mark the revision degraded
};

struct GatewayPolicy {
  int max_in_flight = 1000;  // per deployment; beyond it the gateway answers 503 + Retry-After
  Millis request_timeout{60000};  // an upstream exchange that takes longer fails with 504
  // How long a request waits at the gateway when no replica is ready (scaling from zero,
  // every replica restarting) before 503 + Retry-After; never past request_timeout.
  Millis cold_start_timeout{30000};
  // Requests forwarded to the deployment's replicas at once, per ready replica (as
  // Knative's containerConcurrency and Ray Serve's max_ongoing_requests); 0 = no limit.
  // Beyond it requests wait in a FIFO at the gateway, up to max_queue of them, each for
  // at most queue_timeout; a full queue or a wait that runs out is 503 + Retry-After.
  int max_concurrency = 0;
  int max_queue = 100;
  Millis queue_timeout{30000};
};

struct RolloutPolicy {
  // A rolling update whose new replicas are not all ready by then fails; the replicas
  // that served before it keep serving.
  Millis progress_deadline{600000};
  // How many new replicas a rolling update of a revision starts at a time: a count, or a
  // percentage of the revision's replicas (rounded up, at least 1). 100% (the default)
  // starts them all at once; less replaces the replicas in steps (deployment_controller.h).
  int max_surge = 0;            // a count; 0: use max_surge_percent
  int max_surge_percent = 100;  // used when max_surge is 0

  // New replicas one step may start when a revision runs `replicas` of them.
  int SurgeFor(int replicas) const;
};

struct DeploymentSpec {
  std::string name;
  std::vector<RevisionSpec> revisions;
  // Static split: revision name -> weight. Revisions missing here get weight 0.
  std::map<std::string, int> traffic;
  ReplicaBounds replicas;
  AutoscalingPolicy autoscaling;
  // CPU sets (as taskset lists, "0-3,8"); replica i is pinned to cpusets[i % size].
  std::vector<std::vector<int>> cpusets;
  HealthPolicy health;
  DrainPolicy drain;
  RestartPolicy restart;
  GatewayPolicy gateway;
  RolloutPolicy rollout;
  // The deployment's own YAML, as written, for the state store.
  std::string source_yaml;
};

struct EngineSpec {
  std::vector<DeploymentSpec> deployments;
};

// Parses and validates a spec. `file` names the file in error messages and is the base
// of relative paths. Errors are InvalidArgument "FILE:LINE:COL: FIELD.PATH: problem".
Result<EngineSpec> ParseSpec(const std::string& text, const std::string& file);
// As ParseSpec, with relative paths resolved against `base` (an absolute folder) instead
// of the file's folder; with an empty base a relative path is an error. For documents that
// come over the admin API: `file` only names them in errors.
Result<EngineSpec> ParseSpecIn(const std::string& text, const std::string& file, const std::string& base);
// One deployment (a mapping, as one item of `deployments`), for PUT /v1/deployments/{name}.
// Field paths in errors start at the deployment ("replicas.max").
Result<DeploymentSpec> ParseDeploymentDocument(const std::string& text, const std::string& file,
                                               const std::string& base);
// Reads the file and parses it.
Result<EngineSpec> LoadSpecFile(const std::string& path);

// ParseDuration ("500ms", "2s", ...): core/yaml_reader.h.
using ferry::ParseDuration;
// "0-3,8" -> {0,1,2,3,8}.
Result<std::vector<int>> ParseCpuList(const std::string& text);

}  // namespace ferry::engine
