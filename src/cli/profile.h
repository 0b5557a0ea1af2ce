#pragma once

namespace ferry::cli {

// `ferry profile build`: turns training data (CSV with a header, or a 2-D .npy) into a
// reference profile (per-feature sketches, histograms, categories, missing rates, and
// with --model the model's predictions on the same rows) and writes it as profile.json
// into the model's folder or to --output (docs/monitoring.md). Returns the exit code:
// 0 written, 1 the model failed, 2 bad usage or a malformed input file.
int Profile(int argc, char** argv);

}  // namespace ferry::cli
