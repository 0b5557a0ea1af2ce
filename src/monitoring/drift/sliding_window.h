#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "monitoring/drift/feature_sketch.h"

namespace ferry::monitoring::drift {

// A window over the live stream that slides in steps: rows go into the open step; Seal
// closes it (the oldest of `steps` closed ones then leaves) and opens a new one. The
// window is the merge of the closed steps, so it holds the last `steps` steps' rows and
// costs `steps` + 1 sets of sketches, however many rows pass.
// Thread-safety: a value; one thread at a time.
class SlidingWindow {
 public:
  // `empty`: one empty sketch per feature (histogram edges and category keys set).
  SlidingWindow(std::vector<FeatureSketch> empty, uint32_t steps);

  // The open step's sketches, to add rows to.
  std::vector<FeatureSketch>& open() { return open_; }
  void CountRows(uint64_t n) { open_rows_ += n; }
  uint64_t open_rows() const { return open_rows_; }

  void Seal();
  // Rows in the closed steps (the window evaluated).
  uint64_t rows() const { return closed_rows_; }
  size_t closed_steps() const { return closed_.size(); }
  // The window: the closed steps merged.
  std::vector<FeatureSketch> Merged() const;
  // The same into `merged`, reusing its buffers when it held a window of this one before.
  void MergeInto(std::vector<FeatureSketch>* merged) const;
  // The window to evaluate: the only closed step itself when there is one (no copy),
  // else MergeInto(scratch) and *scratch. Valid until the next Seal (or use of scratch).
  const std::vector<FeatureSketch>& Window(std::vector<FeatureSketch>* scratch) const;

 private:
  struct Step {
    std::vector<FeatureSketch> sketches;
    uint64_t rows = 0;
  };
  std::vector<FeatureSketch> empty_;
  uint32_t steps_;
  std::vector<FeatureSketch> open_;
  uint64_t open_rows_ = 0;
  std::deque<Step> closed_;
  uint64_t closed_rows_ = 0;
};

}  // namespace ferry::monitoring::drift
