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
  // The step that left becomes the open one, emptied in place: its buffers kept (a step
  // seals every window/steps rows) and nothing copied from empty_ but the small parts.
  open_ = std::move(evicted);
  if (open_.size() != empty_.size()) {
    open_ = empty_;
    return;
  }
  for (size_t i = 0; i < open_.size(); ++i) open_[i].ResetTo(empty_[i]);
}

const std::vector<FeatureSketch>& SlidingWindow::Window(std::vector<FeatureSketch>* scratch) const {
  if (closed_.size() == 1) return closed_.front().sketches;
  MergeInto(scratch);
  return *scratch;
}

void SlidingWindow::MergeInto(std::vector<FeatureSketch>* merged) const {
  // The oldest step copied (reusing merged's buffers) rather than empty_ and the step
  // added to it: one pass over its counts instead of two.
  if (closed_.empty()) {
    *merged = empty_;
    return;
  }
  *merged = closed_.front().sketches;
  for (size_t s = 1; s < closed_.size(); ++s) {
    const Step& step = closed_[s];
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
