#include "engine/surge_step.h"

#include <algorithm>

namespace ferry::engine {

SurgeStep NextSurgeStep(const SurgeState& s) {
  SurgeStep next;
  next.old_desired = std::min(s.old_desired, std::max(0, s.target - s.new_ready));
  const int room = s.target + s.surge - s.old_alive;
  next.new_desired = std::max(s.new_desired, std::min(s.target, room));
  return next;
}

}  // namespace ferry::engine
