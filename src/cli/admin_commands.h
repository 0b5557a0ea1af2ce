#pragma once

namespace ferry::cli {

// The commands that talk to a running engine's admin API (docs/engine.md):
//   ferry deploy -f spec.yaml   create or update deployments; waits for the rollout
//   ferry status [NAME]         deployments, revisions, replicas, recent events
//   ferry scale NAME N|--auto   pin the replicas per revision, or autoscale again
//   ferry delete NAME           drain and stop a deployment
//   ferry logs NAME             a replica's log, -f to follow
// Each takes --admin URL (default $FERRY_ADMIN_URL, else http://127.0.0.1:8090) and
// --json. Exit codes: 0 ok, 1 the engine refused or failed (its message is printed) or
// cannot be reached, 2 bad usage.
int Deploy(int argc, char** argv);
int StatusCommand(int argc, char** argv);
int Scale(int argc, char** argv);
int Delete(int argc, char** argv);
int Logs(int argc, char** argv);

}  // namespace ferry::cli
