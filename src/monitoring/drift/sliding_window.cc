#include "monitoring/drift/sliding_window.h"

namespace ferry::monitoring::drift {

SlidingWindow::SlidingWindow(std::vector<FeatureSketch> empty, uint32_t steps)
    : empty_(std::move(empty)), steps_(steps == 0 ? 1 : steps), open_(empty_) {}

void SlidingWindow::Seal() {
  closed_.push_back(Step{std::move(open_), open_rows_});
  closed_rows_ += open_rows_;
  open_ = empty_;
  open_rows_ = 0;
  while (closed_.size() > steps_) {
    closed_rows_ -= closed_.front().rows;
    closed_.pop_front();
  }
}

std::vector<FeatureSketch> SlidingWindow::Merged() const {
  std::vector<FeatureSketch> merged = empty_;
  for (const Step& step : closed_) {
    for (size_t i = 0; i < merged.size() && i < step.sketches.size(); ++i) {
      // Same edges and keys by construction (all come from empty_), so Merge cannot fail.
      (void)merged[i].Merge(step.sketches[i]);
    }
  }
  return merged;
}

}  // namespace ferry::monitoring::drift
