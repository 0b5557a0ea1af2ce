#include "cli/batch.h"

#include <unistd.h>

#include <boost/program_options.hpp>
#include <charconv>
#include <cstdio>
#include <iostream>

#include "batch/batch_job.h"
#include "batch/input_reader.h"
#include "batch/remote_backend.h"
#include "cli/options.h"
#include "cli/server_setup.h"
#include "cli/shutdown_signals.h"
#include "core/log.h"
#include "server/server.h"

namespace ferry::cli {
namespace po = boost::program_options;

namespace {

Result<std::pair<uint64_t, uint64_t>> ParseShard(const std::string& s) {
  const size_t slash = s.find('/');
  uint64_t i = 0, n = 0;
  auto num = [](std::string_view t, uint64_t* out) {
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), *out);
    return ec == std::errc() && p == t.data() + t.size() && !t.empty();
  };
  if (slash == std::string::npos || !num(std::string_view(s).substr(0, slash), &i) ||
      !num(std::string_view(s).substr(slash + 1), &n))
    return InvalidArgument("--shard must be INDEX/COUNT such as 0/4, not '" + s + "'");
  if (n == 0 || i >= n) return InvalidArgument("--shard " + s + ": the index must be below the count (0.." +
                                               std::to_string(n ? n - 1 : 0) + ")");
  return std::make_pair(i, n);
}

// Prints the summary line (or the error) and gives the exit code.
int Report(const Result<batch::BatchJobSummary>& summary) {
  if (!summary.ok()) {
    std::cerr << "ferry batch: " << summary.status().message() << "\n";
    return summary.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  const double rate = summary->seconds > 0 ? static_cast<double>(summary->rows_this_run) / summary->seconds : 0.0;
  FERRY_LOG(kInfo, "batch done",
            ("rows_ok", summary->rows_ok)("rows_failed", summary->rows_failed)("rows_this_run", summary->rows_this_run)(
                "seconds", summary->seconds)("rows_per_s", static_cast<uint64_t>(rate))("output", summary->output.string())(
                "errors", summary->errors.string()));
  std::fprintf(stderr, "ferry batch: %llu rows ok, %llu failed (%s)%s; %llu rows in %.2f s this run, %.0f rows/s -> %s\n",
               static_cast<unsigned long long>(summary->rows_ok), static_cast<unsigned long long>(summary->rows_failed),
               summary->errors.c_str(),
               summary->resumed ? (", resumed at row " + std::to_string(summary->resumed_at_row)).c_str() : "",
               static_cast<unsigned long long>(summary->rows_this_run), summary->seconds, rate, summary->output.c_str());
  return 0;
}

}  // namespace

int Batch(int argc, char** argv) {
  po::options_description desc(
      "usage: ferry batch --model-repository DIR --model NAME --input FILE --output FILE [options]\n"
      "       ferry batch --url http://HOST:PORT|grpc://HOST:PORT --model NAME --input FILE --output FILE [options]\n\n"
      "Runs a model over every row of FILE in this process, through the same server and runtimes\n"
      "as `ferry serve` (dynamic batching included), or against a remote V2 endpoint (--url, REST or gRPC),\n"
      "and writes the results in input order. Formats go by file name: .csv (header row), .jsonl\n"
      "(one object per line), .npy (a 2-D array) and .parquet (read a record batch at a time,\n"
      "written a row group at a time).\n"
      "Killed at any point, the same command continues where it stopped, and the final output is\n"
      "byte-identical to an uninterrupted run's. Rows that fail go to the error file. Each option can\n"
      "also be set through the environment variable named in brackets. See docs/batch.md.\n\n"
      "options",
      /*line_length=*/120, /*min_description_length=*/70);
  // clang-format off
  desc.add_options()
    ("help,h", "print this help")
    ("model", po::value<std::string>(), "model to run [FERRY_BATCH_MODEL]")
    ("model-version", po::value<std::string>()->default_value(""), "version to run; default: the latest [FERRY_BATCH_MODEL_VERSION]")
    ("input", po::value<std::string>(), "input file: .csv, .jsonl, .npy or .parquet [FERRY_BATCH_INPUT]")
    ("input-format", po::value<std::string>()->default_value(""), "csv, jsonl, npy or parquet; default: by the input's file name [FERRY_BATCH_INPUT_FORMAT]")
    ("output", po::value<std::string>(), "output file: .csv, .jsonl, .npy or .parquet; written as OUTPUT.partial, renamed at the end [FERRY_BATCH_OUTPUT]")
    ("errors", po::value<std::string>()->default_value(""), "JSONL file of the rows that failed, {\"row\": N, \"error\": ...}; default: OUTPUT.errors.jsonl [FERRY_BATCH_ERRORS]")
    ("batch-size", po::value<int64_t>()->default_value(0), "rows per request; 0 = the model's max_batch_size [FERRY_BATCH_BATCH_SIZE]")
    ("concurrency", po::value<int>()->default_value(4), "requests in flight at once [FERRY_BATCH_CONCURRENCY]")
    ("url", po::value<std::string>()->default_value(""), "http://HOST:PORT (REST) or grpc://HOST:PORT: send the requests to this V2 endpoint instead of loading the model here [FERRY_BATCH_URL]")
    ("retries", po::value<int>()->default_value(10), "--url: further tries of a request after a connection error, a 5xx or gRPC UNAVAILABLE, with capped exponential back-off [FERRY_BATCH_RETRIES]")
    ("retry-max-ms", po::value<int>()->default_value(5000), "--url: the longest wait between tries (the first is 100 ms, then doubled) [FERRY_BATCH_RETRY_MAX_MS]")
    ("request-timeout-ms", po::value<int>()->default_value(60000), "--url: connect, send and receive of one try [FERRY_BATCH_REQUEST_TIMEOUT_MS]")
    ("carry", po::value<std::vector<std::string>>()->composing(), "input columns copied to the output, comma-separated or repeated [FERRY_BATCH_CARRY]")
    ("map", po::value<std::vector<std::string>>()->composing(), "COLUMN:INPUT: feed a column to a model input; several columns for one input concatenate in order [FERRY_BATCH_MAP]")
    ("outputs", po::value<std::vector<std::string>>()->composing(), "model outputs to write, comma-separated; default: all [FERRY_BATCH_OUTPUTS]")
    ("row-group-rows", po::value<int64_t>()->default_value(65536), ".parquet output: input rows per row group (the job checkpoints at row-group ends) [FERRY_BATCH_ROW_GROUP_ROWS]")
    ("max-errors", po::value<int64_t>()->default_value(-1), "stop (exit 1) once more rows than this have failed; -1 = never [FERRY_BATCH_MAX_ERRORS]")
    ("shard", po::value<std::string>()->default_value("0/1"), "INDEX/COUNT: take only the rows whose index % COUNT == INDEX (Kubernetes Indexed Job: --shard=$(JOB_COMPLETION_INDEX)/COUNT) [FERRY_BATCH_SHARD]")
    ("restart", po::bool_switch(), "ignore a checkpoint and overwrite the output instead of resuming [FERRY_BATCH_RESTART]")
    ("checkpoint-ms", po::value<int>()->default_value(500), "milliseconds between checkpoints (each syncs the partial files) [FERRY_BATCH_CHECKPOINT_MS]")
    ("progress-secs", po::value<int>()->default_value(10), "when stderr is not a terminal: seconds between progress log lines [FERRY_BATCH_PROGRESS_SECS]");
  // clang-format on
  AddModelOptions(desc, "FERRY_BATCH_");
  AddLogOptions(desc, "FERRY_BATCH_");

  ParsedOptions parsed = ParseOptions(argc, argv, desc, "FERRY_BATCH_", "batch");
  if (parsed.exit_code >= 0) return parsed.exit_code;
  const po::variables_map& vm = parsed.vm;
  auto usage = [&desc](const std::string& message) {
    std::cerr << "ferry batch: " << message << "\n\n" << desc << "\n";
    return 2;
  };
  for (const char* required : {"model", "input", "output"})
    if (!vm.count(required)) return usage(std::string("--") + required + " is required");

  server::ServerOptions options;
  const bool remote = !vm["url"].as<std::string>().empty();
  if (Status s = ModelOptionsFromFlags(vm, &options.models); !s.ok() && !remote) return usage(s.message());
  // Only the job's model is loaded.
  options.models.mode = server::ControlMode::kExplicit;
  options.models.startup_models = {vm["model"].as<std::string>()};
  options.response_cache_bytes = 0;

  batch::BatchJobOptions job;
  job.model = vm["model"].as<std::string>();
  job.version = vm["model-version"].as<std::string>();
  job.input = vm["input"].as<std::string>();
  job.input_format = vm["input-format"].as<std::string>();
  job.output = vm["output"].as<std::string>();
  job.errors = vm["errors"].as<std::string>();
  job.batch_size = vm["batch-size"].as<int64_t>();
  job.concurrency = vm["concurrency"].as<int>();
  if (vm.count("carry")) job.carry = SplitCommaList(vm["carry"].as<std::vector<std::string>>());
  if (vm.count("outputs")) job.outputs = SplitCommaList(vm["outputs"].as<std::vector<std::string>>());
  if (vm.count("map")) {
    for (const auto& m : SplitCommaList(vm["map"].as<std::vector<std::string>>())) {
      auto mapping = batch::ParseColumnMapping(m);
      if (!mapping.ok()) return usage(mapping.status().message());
      job.map.push_back(std::move(mapping).value());
    }
  }
  job.max_errors = vm["max-errors"].as<int64_t>();
  job.row_group_rows = vm["row-group-rows"].as<int64_t>();
  auto shard = ParseShard(vm["shard"].as<std::string>());
  if (!shard.ok()) return usage(shard.status().message());
  job.shard_index = shard->first;
  job.shard_count = shard->second;
  job.restart = vm["restart"].as<bool>();
  job.checkpoint_every = std::chrono::milliseconds(std::max(0, vm["checkpoint-ms"].as<int>()));
  job.log_every = std::chrono::seconds(std::max(1, vm["progress-secs"].as<int>()));
  job.progress_terminal = ::isatty(STDERR_FILENO) == 1;

  // Refuse a file name of no known format before loading anything.
  if (!job.input_format.empty()) {
    if (auto f = batch::FormatFromName(job.input_format); !f.ok()) return usage("--input-format: " + f.status().message());
  } else if (auto f = batch::FormatFromPath(job.input); !f.ok()) {
    return usage(f.status().message());
  }
  if (auto f = batch::FormatFromPath(job.output); !f.ok()) return usage(f.status().message());

  // The job stops at the signal's default action (a kill): the checkpoint makes that safe.
  signal(SIGPIPE, SIG_IGN);
  if (remote) {
    batch::RemoteOptions ro;
    ro.url = vm["url"].as<std::string>();
    ro.concurrency = job.concurrency;
    ro.retries = vm["retries"].as<int>();
    ro.backoff_max = std::chrono::milliseconds(std::max(1, vm["retry-max-ms"].as<int>()));
    ro.backoff_initial = std::min(ro.backoff_initial, ro.backoff_max);
    ro.timeout = std::chrono::milliseconds(std::max(1, vm["request-timeout-ms"].as<int>()));
    auto backend = batch::RemoteV2Backend::Create(std::move(ro));
    if (!backend.ok()) return usage(backend.status().message());
    return Report(batch::RunBatchJob(**backend, job));
  }
  auto runtimes = RuntimesFromFlags(vm);
  if (!runtimes.ok()) {
    FERRY_LOG(kError, "cannot start a runtime", ("error", runtimes.status().message()));
    return 1;
  }
  auto server = server::Server::Create(std::move(options), std::move(runtimes).value());
  if (!server.ok()) return usage(server.status().message());
  if (Status s = (*server)->Start(); !s.ok()) {
    FERRY_LOG(kError, "cannot start the server", ("error", s.message()));
    return 1;
  }
  if (Status loaded = CheckModelLoaded(**server, job.model, job.version); !loaded.ok()) {
    std::cerr << "ferry batch: " << loaded.message() << "\n";
    return 1;
  }

  auto summary = batch::RunBatchJob(**server, job);
  (*server)->Shutdown();
  return Report(summary);
}

}  // namespace ferry::cli
