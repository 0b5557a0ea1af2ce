#pragma once

namespace ferry::cli {

// `ferry batch`: runs one model over an input file (CSV, JSONL, .npy) in-process and
// writes the results in input order, resumably (docs/batch.md). Returns the exit code:
// 0 done, 1 the job failed or stopped past --max-errors, 2 bad usage or an input or
// options that do not fit the model.
int Batch(int argc, char** argv);

}  // namespace ferry::cli
