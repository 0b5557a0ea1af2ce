#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "batch/infer_backend.h"
#include "batch/row_decoder.h"
#include "core/result.h"
#include "server/server.h"

namespace ferry::batch {

struct BatchJobOptions {
  std::string model;
  std::string version;  // empty: the latest ready version (recorded, so a resume uses the same)
  std::filesystem::path input;   // .csv, .jsonl, .npy or .parquet
  std::string input_format;      // "csv", "jsonl", "npy", "parquet"; empty: by the input's extension
  std::filesystem::path output;  // .csv, .jsonl, .npy or .parquet
  std::filesystem::path errors;  // JSONL of failed rows; empty: <output>.errors.jsonl
  // Rows per request; 0: the model's max_batch_size (1 for a model that does not batch).
  int64_t batch_size = 0;
  std::vector<std::string> carry;    // input columns copied to the output, in this order
  std::vector<ColumnMapping> map;    // --map col:tensor
  std::vector<std::string> outputs;  // outputs to write; empty: all, in config order
  // The job stops with CANCELLED once more rows than this have failed; -1: never.
  int64_t max_errors = -1;
  uint64_t shard_index = 0;  // this job takes the input rows with index % shard_count == shard_index
  uint64_t shard_count = 1;
  int concurrency = 4;  // requests in flight at once
  // Parquet output: a row group holds the results of this many input rows of the job
  // (ok or failed; the last one holds the rest), so row groups fall where they would in
  // any run of the job, and a checkpoint is taken only at a row group's end.
  int64_t row_group_rows = 65536;
  bool restart = false;  // ignore (and overwrite) a checkpoint and an existing output
  std::chrono::milliseconds checkpoint_every{500};
  bool progress_terminal = false;               // draw the progress line (stderr is a TTY)
  std::chrono::milliseconds log_every{10000};  // otherwise a log line this often
};

struct BatchJobSummary {
  uint64_t rows_ok = 0;       // rows in the output (all runs of the job)
  uint64_t rows_failed = 0;   // rows in the error file (all runs)
  uint64_t rows_this_run = 0; // rows (ok or failed) this run processed
  uint64_t resumed_at_row = 0;  // 0 for a fresh start
  bool resumed = false;
  double seconds = 0;  // this run
  std::filesystem::path output, errors;
};

// Runs one batch job through `server` (started, with the model loaded): reads the input
// in order, decodes rows into batches of `batch_size`, keeps `concurrency` requests in
// flight through Server::Infer (so dynamic batching and several instances stay busy),
// and writes results strictly in input order to <output>.partial and failed rows to
// <errors>.partial, checkpointing (<output>.checkpoint) every `checkpoint_every`. At the
// end the partial files are renamed to their final names and the checkpoint removed.
// Started again with the same options after being killed at any point, it continues
// from the checkpoint and its final files are byte-identical to an uninterrupted run's.
// A batch the model fails is retried row by row, so only the rows that fail go to the
// error file. Errors: INVALID_ARGUMENT before the first row for a schema or options that
// do not fit the model, a checkpoint of another job, or an output that exists already;
// CANCELLED past max_errors; INTERNAL for I/O failures.
// Thread-safety: call from one thread; it blocks until the job ends.
Result<BatchJobSummary> RunBatchJob(server::Server& server, const BatchJobOptions& options);
// The same job through any backend (a remote V2 endpoint: RemoteV2Backend). A request
// the backend fails with an error it says StopsTheJob ends the job (exit 1) with its
// checkpoint kept, so the same command resumes it; other errors fail the rows.
Result<BatchJobSummary> RunBatchJob(InferBackend& backend, const BatchJobOptions& options);

}  // namespace ferry::batch
