#pragma once

namespace ferry::engine {

// One revision replaced in steps during a rolling update (rollout.max_surge below the
// revision's replica count): what runs of its old instance and of its new one.
struct SurgeState {
  int target = 0;       // replicas the new instance has ready at the end
  int surge = 1;        // rollout.max_surge, resolved to a count (RolloutPolicy::SurgeFor)
  int old_desired = 0;  // the old instance's desired count now
  int old_alive = 0;    // the old instance's processes, draining and stopping ones included
  int new_desired = 0;  // the new instance's desired count now
  int new_ready = 0;    // its replicas ready (routed beside the old ones)
};

struct SurgeStep {
  int old_desired = 0;
  int new_desired = 0;
};

// The next counts of a stepped replacement; pure, so unit-tested. Two rules:
//  - capacity: the old instance keeps target - new_ready replicas (never more than it
//    has), so ready replicas of the two together never drop below the target: an old one
//    drains only once a new one is ready to take its place (Kubernetes maxUnavailable 0);
//  - surge: a new replica starts only while the old instance's processes plus the new
//    instance's desired count stay within target + surge. The old processes count until
//    they have exited, so a step starts only after the previous step's drains finished.
// Applied every control tick, it starts `surge` new replicas, waits for them to be
// ready, drains as many old ones, waits for those to exit, and repeats until
// new_desired = target and old_desired = 0.
SurgeStep NextSurgeStep(const SurgeState& s);

}  // namespace ferry::engine
