#include "cli/profile.h"

#include <unistd.h>

#include <boost/program_options.hpp>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <set>

#include "batch/batch_job.h"
#include "batch/input_reader.h"
#include "batch/row_decoder.h"
#include "cli/options.h"
#include "cli/server_setup.h"
#include "core/log.h"
#include "monitoring/drift/profile_builder.h"
#include "server/server.h"

namespace ferry::cli {
namespace po = boost::program_options;
namespace drift = monitoring::drift;

namespace {

bool IsMissingText(std::string_view cell) {
  return cell.empty() || cell == "NA" || cell == "NaN" || cell == "nan" || cell == "null";
}

std::optional<double> ParseNumber(std::string_view cell) {
  while (!cell.empty() && cell.front() == ' ') cell.remove_prefix(1);
  while (!cell.empty() && cell.back() == ' ') cell.remove_suffix(1);
  double v = 0;
  auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
  if (ec != std::errc() || end != cell.data() + cell.size()) return std::nullopt;
  return v;
}

// The element at `p` of a .npy array of `type`, as a double.
double NpyElement(DataType type, const char* p) {
  auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return static_cast<double>(v);
  };
  switch (type) {
    case DataType::kBool: return load(uint8_t{}) != 0 ? 1.0 : 0.0;
    case DataType::kUint8: return load(uint8_t{});
    case DataType::kUint16: return load(uint16_t{});
    case DataType::kUint32: return load(uint32_t{});
    case DataType::kUint64: return load(uint64_t{});
    case DataType::kInt8: return load(int8_t{});
    case DataType::kInt16: return load(int16_t{});
    case DataType::kInt32: return load(int32_t{});
    case DataType::kInt64: return load(int64_t{});
    case DataType::kFp32: return load(float{});
    case DataType::kFp64: return load(double{});
    default: return std::nan("");
  }
}

// What to profile from one file and how its features are named and mapped.
struct FileSpec {
  std::filesystem::path path;
  std::vector<std::string> columns;  // CSV: the columns to take; empty: all numeric ones
  std::set<std::string> categorical;  // CSV columns to treat as categories
  std::string tensor;                 // numeric features read this tensor ("" = the first)
  bool prediction = false;
  // A prediction CSV written by `ferry batch`: column "out_3" is element 3 of tensor
  // "out", column "out" element 0 of "out".
  std::map<std::string, std::pair<std::string, uint32_t>> output_columns;
};

// Adds one file's features to `builder`. Errors name the file and the row or column.
Status ProfileFile(const FileSpec& spec, drift::ProfileBuilder* builder, uint64_t* rows) {
  FERRY_ASSIGN_OR_RETURN(batch::Format format, batch::FormatFromPath(spec.path));
  if (format == batch::Format::kJsonl) {
    return InvalidArgument(spec.path.string() + ": ferry profile build reads .csv, .parquet and .npy files");
  }
  FERRY_ASSIGN_OR_RETURN(auto reader, batch::InputReader::Open(spec.path, format));
  const std::string file = spec.path.string();
  batch::RawRow row;
  auto all = [](uint64_t) { return true; };
  *rows = 0;
  if (format == batch::Format::kNpy) {
    if (!spec.columns.empty() || !spec.categorical.empty()) {
      return InvalidArgument(file + ": --columns and --categorical name CSV columns; a .npy file has none");
    }
    const DataType type = reader->npy_datatype();
    if (type == DataType::kFp16 || type == DataType::kBf16 || type == DataType::kInvalid) {
      return InvalidArgument(file + ": element type " + std::string(DataTypeName(type)) + " is not profiled");
    }
    const size_t width = reader->columns().empty() ? 1 : reader->columns()[0].width;
    const size_t es = DataTypeSize(type);
    const std::string base = spec.tensor.empty() ? (spec.prediction ? "output" : "input") : spec.tensor;
    std::vector<size_t> slots;
    for (size_t j = 0; j < width; ++j) {
      slots.push_back(builder->AddFeature(base + "[" + std::to_string(j) + "]", drift::FeatureKind::kNumeric,
                                          spec.tensor, static_cast<uint32_t>(j), spec.prediction));
    }
    while (reader->Next(&row, all)) {
      for (size_t j = 0; j < width; ++j) builder->AddNumber(slots[j], NpyElement(type, row.text.data() + j * es));
      ++*rows;
    }
    return Status::Ok();
  }

  // CSV: pass 1 decides each column's kind (numeric when every present cell parses).
  const auto& columns = reader->columns();
  std::vector<size_t> picked;
  if (spec.columns.empty()) {
    for (size_t c = 0; c < columns.size(); ++c) picked.push_back(c);
  } else {
    for (const auto& name : spec.columns) {
      size_t c = 0;
      while (c < columns.size() && columns[c].name != name) ++c;
      if (c == columns.size()) return InvalidArgument(file + ": --columns: no column '" + name + "' in the header");
      picked.push_back(c);
    }
  }
  for (const auto& name : spec.categorical) {
    if (std::none_of(picked.begin(), picked.end(), [&](size_t c) { return columns[c].name == name; })) {
      return InvalidArgument(file + ": --categorical: no column '" + name + "' among the profiled columns");
    }
  }
  std::vector<bool> numeric(columns.size(), true);
  while (reader->Next(&row, all)) {
    if (!row.csv->error.empty()) return InvalidArgument(file + ": line " + std::to_string(row.line) + ": " + row.csv->error);
    if (row.csv->cells.size() != columns.size()) {
      return InvalidArgument(file + ": line " + std::to_string(row.line) + ": " + std::to_string(row.csv->cells.size()) +
                             " cells, the header has " + std::to_string(columns.size()));
    }
    for (size_t c : picked) {
      const std::string_view cell = row.csv->cells[c];
      if (numeric[c] && !IsMissingText(cell) && !ParseNumber(cell)) numeric[c] = false;
    }
  }
  // A Parquet page that does not decode ends the rows early: not a shorter profile.
  if (Status s = reader->read_error(); !s.ok()) return InvalidArgument(file + ": " + s.message());
  struct Col {
    size_t column, slot;
    bool numeric;
  };
  std::vector<Col> cols;
  uint32_t numeric_index = 0;
  for (size_t c : picked) {
    const std::string& name = columns[c].name;
    const bool categorical = spec.categorical.count(name) > 0 || !numeric[c];
    // Without --columns only the numeric columns are taken (as one tensor's columns).
    if (spec.columns.empty() && categorical && !spec.categorical.count(name) && spec.output_columns.empty()) continue;
    std::string tensor;
    uint32_t index = 0;
    if (auto it = spec.output_columns.find(name); it != spec.output_columns.end()) {
      tensor = it->second.first;
      index = it->second.second;
    } else if (categorical) {
      tensor = name;  // a categorical input is a tensor of its own, named like the column
    } else {
      tensor = spec.tensor;
      index = numeric_index++;
    }
    std::string feature = name;
    if (!spec.output_columns.empty()) feature = tensor + "[" + std::to_string(index) + "]";
    const size_t slot = builder->AddFeature(feature, categorical ? drift::FeatureKind::kCategorical
                                                                 : drift::FeatureKind::kNumeric,
                                            tensor, index, spec.prediction);
    cols.push_back({c, slot, !categorical});
  }
  if (cols.empty()) return InvalidArgument(file + ": no numeric columns to profile (name others with --columns)");
  FERRY_ASSIGN_OR_RETURN(auto again, batch::InputReader::Open(spec.path, format));
  while (again->Next(&row, all)) {
    for (const Col& c : cols) {
      const std::string_view cell = row.csv->cells[c.column];
      if (IsMissingText(cell)) {
        builder->AddMissing(c.slot);
      } else if (c.numeric) {
        builder->AddNumber(c.slot, *ParseNumber(cell));
      } else {
        builder->AddCategory(c.slot, cell);
      }
    }
    ++*rows;
  }
  if (Status s = again->read_error(); !s.ok()) return InvalidArgument(file + ": " + s.message());
  return Status::Ok();
}

// Runs the model over `data` with `ferry batch`'s job into a CSV in a fresh temporary
// folder; returns its path. The caller removes the folder.
Result<std::filesystem::path> RunModel(const po::variables_map& vm, const std::string& model, const std::string& version,
                                       const std::filesystem::path& data, const std::filesystem::path& work) {
  server::ServerOptions options;
  FERRY_RETURN_IF_ERROR(ModelOptionsFromFlags(vm, &options.models));
  options.models.mode = server::ControlMode::kExplicit;
  options.models.startup_models = {model};
  options.response_cache_bytes = 0;
  FERRY_ASSIGN_OR_RETURN(auto runtimes, RuntimesFromFlags(vm));
  FERRY_ASSIGN_OR_RETURN(auto server, server::Server::Create(std::move(options), std::move(runtimes)));
  if (Status s = server->Start(); !s.ok()) return Unavailable("cannot start the server: " + s.message());
  auto ready = server->ModelReady(model, version);
  if (!ready.ok() || !*ready) {
    std::string reason = ready.ok() ? "not ready" : ready.status().message();
    for (const auto& e : server->RepositoryIndex(false)) {
      if (e.name == model && !e.reason.empty()) reason = e.reason;
    }
    server->Shutdown();
    return Unavailable("model '" + model + "' did not load: " + reason);
  }
  batch::BatchJobOptions job;
  job.model = model;
  job.version = version;
  job.input = data;
  job.output = work / "predictions.csv";
  job.errors = work / "errors.jsonl";
  job.restart = true;
  job.max_errors = 0;
  auto summary = batch::RunBatchJob(*server, job);
  server->Shutdown();
  if (!summary.ok()) return summary.status();
  if (summary->rows_failed > 0) {
    return InvalidArgument("the model failed on some rows of " + data.string() + " (see ferry batch)");
  }
  return job.output;
}

}  // namespace

int Profile(int argc, char** argv) {
  po::options_description desc(
      "usage: ferry profile build --data FILE [--model-repository DIR --model NAME] [--output FILE] [options]\n\n"
      "Builds a model's reference profile from its training data: per feature a quantile sketch, a\n"
      "histogram, category counts and the missing rate; with --model also the model's predictions on\n"
      "the same rows (run in this process, as ferry batch does). Writes DIR/NAME/profile.json, or\n"
      "--output. The drift monitor compares live requests with it (docs/monitoring.md).\n\n"
      "Features: a .npy file's columns are input[0], input[1], ... (the model's first input, or\n"
      "--tensor); a CSV's or Parquet file's numeric columns (all of them, or --columns) are that\n"
      "input's columns in order (a Parquet null is a missing value), and each categorical column\n"
      "(--categorical, or one whose cells are not numbers when named in --columns) is an input\n"
      "tensor of its own name.\n\noptions");
  // clang-format off
  desc.add_options()
    ("data", po::value<std::string>(), "training data: .csv (header row), .parquet or .npy (2-D) [FERRY_PROFILE_DATA]")
    ("output,o", po::value<std::string>(), "profile file to write; default: <repository>/<model>/profile.json [FERRY_PROFILE_OUTPUT]")
    ("model", po::value<std::string>(), "the model whose profile it is; its predictions are profiled too [FERRY_PROFILE_MODEL]")
    ("model-version", po::value<std::string>()->default_value(""), "version to run; default: the latest [FERRY_PROFILE_MODEL_VERSION]")
    ("no-predictions", po::bool_switch(), "with --model: do not run it, only locate its folder [FERRY_PROFILE_NO_PREDICTIONS]")
    ("columns", po::value<std::vector<std::string>>()->composing(), "CSV columns to profile, comma-separated; default: every numeric column [FERRY_PROFILE_COLUMNS]")
    ("categorical", po::value<std::vector<std::string>>()->composing(), "CSV columns to treat as categories [FERRY_PROFILE_CATEGORICAL]")
    ("tensor", po::value<std::string>()->default_value(""), "input tensor the numeric features are columns of; default: the model's first [FERRY_PROFILE_TENSOR]")
    ("sketch-k", po::value<uint32_t>()->default_value(200), "KLL sketch size k (rank error about 1/k; memory about 3k values per feature) [FERRY_PROFILE_SKETCH_K]")
    ("bins", po::value<uint32_t>()->default_value(10), "histogram bins per numeric feature [FERRY_PROFILE_BINS]")
    ("max-categories", po::value<uint32_t>()->default_value(64), "values kept per categorical feature; the rest count as other [FERRY_PROFILE_MAX_CATEGORIES]");
  // clang-format on
  AddModelOptions(desc, "FERRY_PROFILE_");
  desc.add_options()("log-level", po::value<std::string>()->default_value("warning"),
                     "debug | info | warning | error [FERRY_PROFILE_LOG_LEVEL]");
  if (argc < 2 || std::strcmp(argv[1], "build") != 0) {
    if (argc >= 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
      std::cout << desc << "\n";
      return 0;
    }
    std::cerr << "ferry profile: the only subcommand is 'build'\n\n" << desc << "\n";
    return 2;
  }
  ParsedOptions parsed = ParseOptions(argc - 1, argv + 1, desc, "FERRY_PROFILE_", "profile build");
  if (parsed.exit_code >= 0) return parsed.exit_code;
  const po::variables_map& vm = parsed.vm;
  auto usage = [](const std::string& message) {
    std::cerr << "ferry profile build: " << message << "\n";
    return 2;
  };
  if (!vm.count("data")) return usage("--data is required");
  const std::filesystem::path data = vm["data"].as<std::string>();
  const std::string model = vm.count("model") ? vm["model"].as<std::string>() : "";
  std::filesystem::path output;
  if (vm.count("output")) {
    output = vm["output"].as<std::string>();
  } else if (!model.empty() && vm.count("model-repository")) {
    output = std::filesystem::path(vm["model-repository"].as<std::vector<std::string>>().front()) / model / "profile.json";
    if (!std::filesystem::is_directory(output.parent_path())) {
      return usage("--model: no folder " + output.parent_path().string() + " in the repository");
    }
  } else {
    return usage("--output, or --model-repository and --model, is required");
  }
  const uint32_t k = vm["sketch-k"].as<uint32_t>();
  if (k < drift::KllSketch::kMinK || k > 65536) return usage("--sketch-k: " + std::to_string(k) + " is not in 8..65536");
  const uint32_t bins = vm["bins"].as<uint32_t>();
  if (bins < 1 || bins > 1000) return usage("--bins: " + std::to_string(bins) + " is not in 1..1000");
  drift::ProfileBuilder builder({k, bins, vm["max-categories"].as<uint32_t>()});

  FileSpec inputs;
  inputs.path = data;
  if (vm.count("columns")) inputs.columns = SplitCommaList(vm["columns"].as<std::vector<std::string>>());
  if (vm.count("categorical")) {
    for (auto& c : SplitCommaList(vm["categorical"].as<std::vector<std::string>>())) inputs.categorical.insert(c);
  }
  inputs.tensor = vm["tensor"].as<std::string>();
  uint64_t rows = 0;
  if (Status s = ProfileFile(inputs, &builder, &rows); !s.ok()) return usage(s.message());
  if (rows == 0) return usage(data.string() + ": no rows");
  for (uint64_t i = 0; i < rows; ++i) builder.CountRow();

  if (!model.empty() && !vm["no-predictions"].as<bool>()) {
    char tmpl[] = "/tmp/ferry-profile-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return usage("cannot create a temporary folder");
    const std::filesystem::path work(tmpl);
    auto predictions = RunModel(vm, model, vm["model-version"].as<std::string>(), data, work);
    int code = 0;
    if (!predictions.ok()) {
      std::cerr << "ferry profile build: " << predictions.status().message() << "\n";
      code = predictions.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
    } else {
      // ferry batch names a tensor's columns NAME (one element) or NAME_0, NAME_1, ...
      FileSpec out;
      out.path = *predictions;
      out.prediction = true;
      auto header = batch::InputReader::Open(out.path, batch::Format::kCsv);
      if (header.ok()) {
        for (const auto& c : (*header)->columns()) {
          const size_t us = c.name.rfind('_');
          uint32_t index = 0;
          if (us != std::string::npos && us + 1 < c.name.size() &&
              std::from_chars(c.name.data() + us + 1, c.name.data() + c.name.size(), index).ptr ==
                  c.name.data() + c.name.size()) {
            out.output_columns[c.name] = {c.name.substr(0, us), index};
          } else {
            out.output_columns[c.name] = {c.name, 0};
          }
        }
      }
      uint64_t predicted = 0;
      if (Status s = ProfileFile(out, &builder, &predicted); !s.ok()) {
        std::cerr << "ferry profile build: predictions: " << s.message() << "\n";
        code = 1;
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
    if (code != 0) return code;
  }

  drift::ReferenceProfile profile = builder.Finish(data.filename().string());
  if (Status s = drift::WriteProfile(output, profile); !s.ok()) {
    std::cerr << "ferry profile build: " << s.message() << "\n";
    return 1;
  }
  std::cerr << "ferry profile build: " << rows << " rows, " << profile.features.size() << " features, "
            << profile.predictions.size() << " predictions -> " << output.string() << "\n";
  return 0;
}

}  // namespace ferry::cli
