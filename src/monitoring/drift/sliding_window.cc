#include "monitoring/drift/sliding_window.h"

namespace ferry::monitoring::drift {

SlidingWindow::SlidingWindow(std::vector<FeatureSketch> empty, uint32_t steps)
    : empty_(std::move(empty)), steps_(steps == 0 ? 1 : steps), open_(empty_) {}

void SlidingWindow::Seal() {
  closed_.push_back(Step{std::move(open_), open_rows_});
  closed_rows_ += open_rows_;
  open_rows_ = 0;
  std::vector<FeatureSketch> evicted;
  while (closed_.size() > steps_) {
    closed_rows_ -= closed_.front().rows;
    evicted = std::move(closed_.front().sketches);
    closed_.pop_front();
  }
  // The step that left becomes the open one: assigning empty_ to sketches of the same
  // shape keeps their buffers (a step seals every window/steps rows).
  open_ = std::move(evicted);
  open_ = empty_;
}

void SlidingWindow::MergeInto(std::vector<FeatureSketch>* merged) const {
  *merged = empty_;
  for (const Step& step : closed_) {
    for (size_t i = 0; i < merged->size() && i < step.sketches.size(); ++i) {
      // Same edges and keys by construction (all come from empty_), so Merge cannot fail.
      (void)(*merged)[i].Merge(step.sketches[i]);
    }
  }
}

std::vector<FeatureSketch> SlidingWindow::Merged() const {
  std::vector<FeatureSketch> merged;
  MergeInto(&merged);
  return merged;
}

}  // namespace ferry::monitoring::drift
