#include "batch/batch_job.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "batch/checkpoint.h"
#include "batch/input_reader.h"
#include "batch/output_writer.h"
#include "batch/parquet_output.h"
#include "batch/progress.h"
#include "core/log.h"

namespace ferry::batch {
namespace {

namespace fs = std::filesystem;

fs::path WithSuffix(const fs::path& p, const char* suffix) {
  fs::path out = p;
  out += suffix;
  return out;
}

// One request's worth of rows, from decoding to writing.
struct PendingBatch {
  std::vector<uint64_t> rows;        // input row index of each decoded row
  std::vector<std::string> carried;  // rows.size() x carry columns
  std::vector<std::string> buffers;  // per model input: rows x width elements (BYTES: length-prefixed)
  std::vector<Tensor> inputs;        // the request's tensors (sharing `buffers`' bytes once sent)
  std::vector<std::pair<uint64_t, std::string>> errors;  // rows that failed to decode
  uint64_t end_offset = 0, end_row = 0, end_line = 0;    // the reader's position after the batch
  bool ends_row_group = false;  // Parquet output: the row group ends with this batch

  bool done = false;  // guarded by the job's mutex
  Result<InferResponse> result{Internal("not run")};
};

std::string ErrorLine(uint64_t row, std::string_view message) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("row");
  w.Uint64(row);
  w.Key("error");
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  w.EndObject();
  std::string s(sb.GetString(), sb.GetSize());
  s += '\n';
  return s;
}

std::string JoinNames(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

// An output file being written: the partial file, its byte count.
struct PartialFile {
  fs::path path;
  int fd = -1;
  uint64_t bytes = 0;
  ~PartialFile() {
    if (fd >= 0) ::close(fd);
  }
  Status Create() {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return InvalidArgument("cannot create '" + path.string() + "': " + std::strerror(errno));
    bytes = 0;
    return Status::Ok();
  }
  // Reopens the file a checkpoint counted `at` bytes of and drops what followed.
  Status Reopen(uint64_t at) {
    fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
      return InvalidArgument("cannot resume: '" + path.string() + "': " + std::strerror(errno) +
                             " (pass --restart to start over)");
    struct stat st;
    if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < at)
      return InvalidArgument("cannot resume: '" + path.string() + "' holds " + std::to_string(st.st_size) +
                             " bytes, fewer than the " + std::to_string(at) +
                             " its checkpoint counts (pass --restart to start over)");
    if (::ftruncate(fd, static_cast<off_t>(at)) != 0 || ::lseek(fd, static_cast<off_t>(at), SEEK_SET) < 0)
      return Internal("cannot truncate '" + path.string() + "': " + std::strerror(errno));
    bytes = at;
    return Status::Ok();
  }
  Status Append(std::string_view data) {
    FERRY_RETURN_IF_ERROR(WriteAll(fd, data, "'" + path.string() + "'"));
    bytes += data.size();
    return Status::Ok();
  }
  Status Sync() {
    if (::fdatasync(fd) != 0) return Internal("cannot sync '" + path.string() + "': " + std::strerror(errno));
    return Status::Ok();
  }
};

Status RenameInto(const fs::path& from, const fs::path& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0)
    return Internal("cannot rename '" + from.string() + "' to '" + to.string() + "': " + std::strerror(errno));
  return Status::Ok();
}

class Job {
 public:
  Job(InferBackend& backend, const BatchJobOptions& o) : backend_(backend), o_(o) {}
  Result<BatchJobSummary> Run();

 private:
  Status Prepare();
  Status OpenFiles();
  void Submit(std::shared_ptr<PendingBatch> b);
  Status WriteBatch(PendingBatch& b);
  // Runs rows of a failed batch one at a time; appends each result or error.
  Status RetryRows(PendingBatch& b, std::string* out, std::vector<std::pair<uint64_t, std::string>>* errors);
  Status FormatRows(PendingBatch& b, const InferResponse& resp, size_t first, size_t count, std::string* out);
  Status SaveProgress(bool complete);
  // Whether everything before the reader's checkpointed position is in the partial
  // files: always, except for Parquet rows buffered for a row group not yet written.
  bool Durable() const { return !parquet_ || parquet_->buffered_rows() == 0; }
  Status FlushRowGroup();
  Status WriteParquetFooter();
  Status Finish();
  std::shared_ptr<PendingBatch> NewBatch();

  InferBackend& backend_;
  const BatchJobOptions& o_;
  std::string version_;
  int64_t max_batch_ = 0;   // the model's max_batch_size
  int64_t batch_rows_ = 1;  // rows per request
  std::vector<std::string> requested_;
  std::unique_ptr<InputReader> reader_;
  std::optional<RowDecoder> decoder_;
  std::unique_ptr<OutputWriter> writer_;
  std::unique_ptr<ParquetOutput> parquet_;  // a .parquet output only
  fs::path output_partial_, errors_path_, errors_partial_, checkpoint_path_;
  PartialFile out_, err_;
  PartialFile row_groups_;  // Parquet output: each row group's metadata, for the footer
  Checkpoint ckpt_;
  std::chrono::steady_clock::time_point last_checkpoint_;
  BatchJobSummary summary_;

  std::mutex mu_;
  std::condition_variable cv_;
};

Status Job::Prepare() {
  // The version is pinned, so a resumed job (and every request) uses the same one.
  FERRY_ASSIGN_OR_RETURN(ResolvedModel resolved, backend_.Resolve(o_.model, o_.version));
  version_ = resolved.version;
  const inference::ModelConfig& config = resolved.config;
  max_batch_ = config.max_batch_size();
  if (o_.batch_size < 0) return InvalidArgument("--batch-size must be 1 or more");
  if (max_batch_ == 0) {
    if (o_.batch_size > 1)
      return InvalidArgument("--batch-size " + std::to_string(o_.batch_size) + ": model '" + o_.model +
                             "' does not batch (max_batch_size 0), so each request is one row");
    batch_rows_ = 1;
  } else {
    if (o_.batch_size > max_batch_)
      return InvalidArgument("--batch-size " + std::to_string(o_.batch_size) + " is more than model '" + o_.model +
                             "' takes (max_batch_size " + std::to_string(max_batch_) + ")");
    batch_rows_ = o_.batch_size > 0 ? o_.batch_size : max_batch_;
  }
  std::vector<ModelInput> inputs;
  for (const auto& in : config.input())
    inputs.push_back({in.name(), static_cast<DataType>(in.data_type()), Shape(in.dims().begin(), in.dims().end()), 1});
  std::vector<ModelOutput> outputs;
  if (o_.outputs.empty()) {
    for (const auto& out : config.output())
      outputs.push_back({out.name(), static_cast<DataType>(out.data_type()), Shape(out.dims().begin(), out.dims().end()), 0});
  } else {
    for (const auto& name : o_.outputs) {
      bool found = false;
      for (const auto& out : config.output())
        if (out.name() == name) {
          outputs.push_back({out.name(), static_cast<DataType>(out.data_type()), Shape(out.dims().begin(), out.dims().end()), 0});
          found = true;
        }
      if (!found) {
        std::string known;
        for (const auto& out : config.output()) known += (known.empty() ? "" : ", ") + out.name();
        return InvalidArgument("--outputs: model '" + o_.model + "' has no output '" + name + "' (outputs: " + known + ")");
      }
    }
  }
  for (const auto& out : outputs) requested_.push_back(out.name);

  FERRY_ASSIGN_OR_RETURN(Format in_format,
                         o_.input_format.empty() ? FormatFromPath(o_.input) : FormatFromName(o_.input_format));
  FERRY_ASSIGN_OR_RETURN(Format out_format, FormatFromPath(o_.output));
  FERRY_ASSIGN_OR_RETURN(reader_, InputReader::Open(o_.input, in_format));
  reader_->set_defer_csv_split(true);  // RowDecoder splits and parses plain lines in one pass
  FERRY_ASSIGN_OR_RETURN(RowDecoder decoder, RowDecoder::Create(*reader_, std::move(inputs), o_.carry, o_.map));
  reader_->set_typed_columns(decoder.TypedColumns());  // Parquet numbers go straight into the tensors
  decoder_.emplace(std::move(decoder));
  FERRY_ASSIGN_OR_RETURN(writer_, OutputWriter::Create(out_format, decoder_->carry_names(), decoder_->carried_is_json(),
                                                       std::move(outputs)));
  if (out_format == Format::kParquet) {
    if (o_.row_group_rows < 1) return InvalidArgument("--row-group-rows must be 1 or more");
    FERRY_ASSIGN_OR_RETURN(parquet_, ParquetOutput::Create(*writer_, decoder_->carry_names(), decoder_->carried_is_json()));
  }
  FERRY_LOG(kInfo, "batch job", ("model", o_.model)("version", version_)("batch_size", batch_rows_)(
                                    "concurrency", o_.concurrency)("columns", decoder_->Describe()));

  // Everything that changes the output's bytes.
  struct stat st;
  if (::stat(o_.input.c_str(), &st) != 0) return InvalidArgument("input '" + o_.input.string() + "': " + std::strerror(errno));
  std::string map;
  for (const auto& m : o_.map) map += (map.empty() ? "" : ",") + m.column + ":" + m.tensor;
  ckpt_.identity = {
      {"input", fs::absolute(o_.input).lexically_normal().string()},
      {"input_size", std::to_string(st.st_size)},
      {"input_mtime_ns", std::to_string(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec)},
      {"model", o_.model},
      {"version", version_},
      {"batch_size", std::to_string(batch_rows_)},
      {"carry", JoinNames(o_.carry)},
      {"map", map},
      {"outputs", JoinNames(requested_)},
      {"shard", std::to_string(o_.shard_index) + "/" + std::to_string(o_.shard_count)},
      {"output", fs::absolute(o_.output).lexically_normal().string()},
      {"errors", fs::absolute(errors_path_).lexically_normal().string()},
  };
  if (!o_.input_format.empty()) ckpt_.identity.push_back({"input_format", o_.input_format});
  if (parquet_) ckpt_.identity.push_back({"row_group_rows", std::to_string(o_.row_group_rows)});
  return Status::Ok();
}

Status Job::OpenFiles() {
  auto loaded = LoadCheckpoint(checkpoint_path_);
  if (!loaded.ok() && !o_.restart) return loaded.status();
  std::optional<Checkpoint> found = loaded.ok() ? std::move(loaded).value() : std::nullopt;
  if (o_.restart) found.reset();
  if (found) {
    std::string diff = IdentityDifference(found->identity, ckpt_.identity);
    if (!diff.empty())
      return InvalidArgument("checkpoint '" + checkpoint_path_.string() + "' belongs to another job (" + diff +
                             "); run the same command to resume it, or pass --restart to start over");
    if (found->complete) {
      ckpt_ = *found;
      return Status::Ok();
    }
    FERRY_RETURN_IF_ERROR(out_.Reopen(found->output_bytes));
    FERRY_RETURN_IF_ERROR(err_.Reopen(found->error_bytes));
    if (parquet_) FERRY_RETURN_IF_ERROR(row_groups_.Reopen(found->row_group_meta_bytes));
    FERRY_RETURN_IF_ERROR(reader_->Seek(found->input_offset, found->next_row, found->next_line));
    ckpt_ = *found;
    summary_.resumed = true;
    summary_.resumed_at_row = found->next_row;
    FERRY_LOG(kInfo, "resuming from the checkpoint",
              ("checkpoint", checkpoint_path_.string())("row", found->next_row)("rows_ok", found->rows_ok)(
                  "rows_failed", found->rows_failed));
    return Status::Ok();
  }
  std::error_code ec;
  if (!o_.restart && fs::exists(o_.output, ec))
    return InvalidArgument("output '" + o_.output.string() +
                           "' exists and no checkpoint says it is unfinished; remove it or pass --restart to overwrite it");
  FERRY_RETURN_IF_ERROR(out_.Create());
  FERRY_RETURN_IF_ERROR(err_.Create());
  if (parquet_) FERRY_RETURN_IF_ERROR(row_groups_.Create());
  FERRY_RETURN_IF_ERROR(out_.Append(writer_->Header(0)));
  ckpt_.input_offset = reader_->offset();
  ckpt_.next_row = reader_->next_index();
  ckpt_.next_line = reader_->next_line();
  return SaveProgress(false);
}

Status Job::SaveProgress(bool complete) {
  FERRY_RETURN_IF_ERROR(out_.Sync());
  FERRY_RETURN_IF_ERROR(err_.Sync());
  if (parquet_) FERRY_RETURN_IF_ERROR(row_groups_.Sync());
  ckpt_.output_bytes = out_.bytes;
  ckpt_.error_bytes = err_.bytes;
  ckpt_.row_group_meta_bytes = row_groups_.bytes;
  ckpt_.complete = complete;
  last_checkpoint_ = std::chrono::steady_clock::now();
  return SaveCheckpoint(checkpoint_path_, ckpt_);
}

std::shared_ptr<PendingBatch> Job::NewBatch() {
  auto b = std::make_shared<PendingBatch>();
  b->buffers.resize(decoder_->inputs().size());
  for (size_t i = 0; i < b->buffers.size(); ++i) {
    const ModelInput& in = decoder_->inputs()[i];
    b->buffers[i].resize(static_cast<size_t>(batch_rows_) * in.width * DataTypeSize(in.datatype));
  }
  return b;
}

void Job::Submit(std::shared_ptr<PendingBatch> b) {
  const size_t n = b->rows.size();
  if (n == 0) {
    b->done = true;
    return;
  }
  InferRequest req;
  req.model_name = o_.model;
  req.model_version = version_;
  for (size_t i = 0; i < b->buffers.size(); ++i) {
    const ModelInput& in = decoder_->inputs()[i];
    if (in.datatype != DataType::kBytes) b->buffers[i].resize(n * in.width * DataTypeSize(in.datatype));
    Tensor t;
    t.name = in.name;
    t.datatype = in.datatype;
    if (max_batch_ > 0) t.shape.push_back(static_cast<int64_t>(n));
    t.shape.insert(t.shape.end(), in.dims.begin(), in.dims.end());
    t.Own(std::move(b->buffers[i]));
    b->inputs.push_back(t);
    req.inputs.push_back(std::move(t));
  }
  for (const auto& name : requested_) req.outputs.push_back({name, {}});
  backend_.Infer(std::move(req), [this, b](Result<InferResponse> r) {
    std::lock_guard<std::mutex> lock(mu_);
    b->result = std::move(r);
    b->done = true;
    cv_.notify_all();
  });
}

Status Job::FormatRows(PendingBatch& b, const InferResponse& resp, size_t first, size_t count, std::string* out) {
  std::vector<const Tensor*> tensors;
  for (const auto& name : requested_) {
    const Tensor* found = nullptr;
    for (const auto& t : resp.outputs)
      if (t.name == name) found = &t;
    if (!found) return Internal("the model did not return output '" + name + "'");
    tensors.push_back(found);
  }
  const size_t ncarry = decoder_->carry_names().size();
  if (parquet_) {
    FERRY_ASSIGN_OR_RETURN(CheckedOutputs checked, writer_->CheckTensors(tensors, count));
    for (size_t r = 0; r < count; ++r) parquet_->AppendRow(b.carried.data() + (first + r) * ncarry, tensors, checked, r);
    return Status::Ok();
  }
  return writer_->AppendRows(b.carried.data() + first * ncarry, tensors, count, out);
}

Status Job::RetryRows(PendingBatch& b, std::string* out, std::vector<std::pair<uint64_t, std::string>>* errors) {
  // Where each row starts in each input's bytes (BYTES rows differ in length).
  std::vector<std::vector<size_t>> starts(b.inputs.size());
  for (size_t i = 0; i < b.inputs.size(); ++i) {
    const Tensor& whole = b.inputs[i];
    const size_t n = b.rows.size();
    if (whole.datatype != DataType::kBytes) {
      for (size_t r = 0; r <= n; ++r) starts[i].push_back(r * (whole.byte_size() / n));
      continue;
    }
    const size_t width = decoder_->inputs()[i].width;
    const std::string_view all = whole.bytes();
    size_t at = 0;
    for (size_t e = 0; e < n * width; ++e) {
      if (e % width == 0) starts[i].push_back(at);
      uint32_t len;
      std::memcpy(&len, all.data() + at, 4);  // the job's own encoding: in bounds
      at += 4 + len;
    }
    starts[i].push_back(at);
  }
  for (size_t r = 0; r < b.rows.size(); ++r) {
    InferRequest req;
    req.model_name = o_.model;
    req.model_version = version_;
    for (size_t i = 0; i < b.inputs.size(); ++i) {
      const Tensor& whole = b.inputs[i];
      Tensor t;
      t.name = whole.name;
      t.datatype = whole.datatype;
      t.shape = whole.shape;
      if (max_batch_ > 0) t.shape[0] = 1;
      t.Own(std::string(whole.bytes().substr(starts[i][r], starts[i][r + 1] - starts[i][r])));
      req.inputs.push_back(std::move(t));
    }
    for (const auto& name : requested_) req.outputs.push_back({name, {}});
    std::mutex m;
    std::condition_variable cv;
    std::optional<Result<InferResponse>> got;
    backend_.Infer(std::move(req), [&](Result<InferResponse> res) {
      std::lock_guard<std::mutex> lock(m);
      got.emplace(std::move(res));
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return got.has_value(); });
    if (!got->ok() && backend_.StopsTheJob(got->status())) return got->status();
    Status s = got->ok() ? FormatRows(b, **got, r, 1, out) : got->status();
    if (!s.ok()) errors->emplace_back(b.rows[r], "row " + std::to_string(b.rows[r]) + ": model '" + o_.model + "': " + s.message());
  }
  return Status::Ok();
}

Status Job::WriteBatch(PendingBatch& b) {
  std::string out;
  std::vector<std::pair<uint64_t, std::string>> model_errors;
  if (!b.rows.empty()) {
    if (!b.result.ok() && backend_.StopsTheJob(b.result.status()))
      return Status(b.result.status().code(), b.result.status().message() +
                                                  "; the checkpoint is kept: run the same command to resume");
    Status s = b.result.ok() ? FormatRows(b, *b.result, 0, b.rows.size(), &out) : b.result.status();
    if (!s.ok()) {
      if (b.rows.size() == 1) {
        model_errors.emplace_back(b.rows[0], "row " + std::to_string(b.rows[0]) + ": model '" + o_.model + "': " + s.message());
      } else {
        FERRY_LOG(kWarning, "a batch failed; retrying its rows one by one",
                  ("first_row", b.rows.front())("rows", b.rows.size())("error", s.message()));
        out.clear();
        FERRY_RETURN_IF_ERROR(RetryRows(b, &out, &model_errors));
      }
    }
  }
  // The error file is in row order whatever made a row fail.
  std::vector<std::pair<uint64_t, std::string>> errors = std::move(b.errors);
  errors.insert(errors.end(), model_errors.begin(), model_errors.end());
  std::sort(errors.begin(), errors.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::string err;
  for (const auto& [row, msg] : errors) err += ErrorLine(row, msg);
  FERRY_RETURN_IF_ERROR(out_.Append(out));
  FERRY_RETURN_IF_ERROR(err_.Append(err));
  ckpt_.rows_ok += b.rows.size() - model_errors.size();
  ckpt_.rows_failed += errors.size();
  summary_.rows_this_run += b.rows.size() + b.errors.size();
  ckpt_.input_offset = b.end_offset;
  ckpt_.next_row = b.end_row;
  ckpt_.next_line = b.end_line;
  if (b.ends_row_group) FERRY_RETURN_IF_ERROR(FlushRowGroup());
  if (o_.max_errors >= 0 && ckpt_.rows_failed > static_cast<uint64_t>(o_.max_errors)) {
    if (Durable()) FERRY_RETURN_IF_ERROR(SaveProgress(false));
    return Status(StatusCode::kCancelled, std::to_string(ckpt_.rows_failed) + " rows failed, more than --max-errors " +
                                              std::to_string(o_.max_errors) + " (see '" + errors_partial_.string() +
                                              "'); stopping");
  }
  if (Durable() && std::chrono::steady_clock::now() - last_checkpoint_ >= o_.checkpoint_every)
    FERRY_RETURN_IF_ERROR(SaveProgress(false));
  return Status::Ok();
}

Status Job::FlushRowGroup() {
  if (parquet_->buffered_rows() == 0) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(ParquetOutput::RowGroup g, parquet_->FlushRowGroup(out_.bytes));
  FERRY_RETURN_IF_ERROR(out_.Append(g.data));
  // Each record: its length (4 bytes, little-endian), then the serialized metadata.
  const auto len = static_cast<uint32_t>(g.metadata.size());
  char prefix[4] = {static_cast<char>(len), static_cast<char>(len >> 8), static_cast<char>(len >> 16),
                    static_cast<char>(len >> 24)};
  FERRY_RETURN_IF_ERROR(row_groups_.Append(std::string_view(prefix, 4)));
  return row_groups_.Append(g.metadata);
}

Status Job::WriteParquetFooter() {
  // The last row group holds the rows after the last full one.
  FERRY_RETURN_IF_ERROR(FlushRowGroup());
  std::ifstream in(row_groups_.path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return Internal("cannot read '" + row_groups_.path.string() + "'");
  all.resize(std::min<size_t>(all.size(), row_groups_.bytes));
  std::vector<std::string> records;
  for (size_t at = 0; at < all.size();) {
    if (all.size() - at < 4) return Internal("'" + row_groups_.path.string() + "' ends inside a record");
    const auto* u = reinterpret_cast<const unsigned char*>(all.data() + at);
    const size_t len = u[0] | (u[1] << 8) | (u[2] << 16) | (static_cast<size_t>(u[3]) << 24);
    if (all.size() - at - 4 < len) return Internal("'" + row_groups_.path.string() + "' ends inside a record");
    records.push_back(all.substr(at + 4, len));
    at += 4 + len;
  }
  FERRY_ASSIGN_OR_RETURN(std::string footer, parquet_->Footer(records));
  return out_.Append(footer);
}

Status Job::Finish() {
  if (!ckpt_.complete) {
    if (writer_->format() == Format::kNpy) {
      // The row count is known now: the header (same length) goes in place.
      std::string header = writer_->Header(ckpt_.rows_ok);
      if (::pwrite(out_.fd, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size()))
        return Internal("cannot write the header of '" + output_partial_.string() + "': " + std::strerror(errno));
    }
    if (parquet_) FERRY_RETURN_IF_ERROR(WriteParquetFooter());
    FERRY_RETURN_IF_ERROR(SaveProgress(true));
  }
  // A kill between these steps leaves a complete checkpoint: the next run only renames.
  std::error_code ec;
  if (fs::exists(errors_partial_, ec)) FERRY_RETURN_IF_ERROR(RenameInto(errors_partial_, errors_path_));
  if (fs::exists(output_partial_, ec)) FERRY_RETURN_IF_ERROR(RenameInto(output_partial_, o_.output));
  if (parquet_) fs::remove(row_groups_.path, ec);
  fs::remove(checkpoint_path_, ec);
  return Status::Ok();
}

Result<BatchJobSummary> Job::Run() {
  if (o_.shard_count == 0 || o_.shard_index >= o_.shard_count)
    return InvalidArgument("--shard " + std::to_string(o_.shard_index) + "/" + std::to_string(o_.shard_count) +
                           ": the index must be below the count");
  if (o_.concurrency < 1) return InvalidArgument("--concurrency must be 1 or more");
  errors_path_ = o_.errors.empty() ? WithSuffix(o_.output, ".errors.jsonl") : o_.errors;
  output_partial_ = WithSuffix(o_.output, ".partial");
  errors_partial_ = WithSuffix(errors_path_, ".partial");
  checkpoint_path_ = WithSuffix(o_.output, ".checkpoint");
  out_.path = output_partial_;
  err_.path = errors_partial_;
  row_groups_.path = WithSuffix(o_.output, ".rowgroups.partial");
  summary_.output = o_.output;
  summary_.errors = errors_path_;
  FERRY_RETURN_IF_ERROR(Prepare());
  FERRY_RETURN_IF_ERROR(OpenFiles());

  Progress progress(o_.progress_terminal, o_.log_every, reader_->offset(), reader_->size_bytes(),
                    ckpt_.rows_ok + ckpt_.rows_failed);
  if (!ckpt_.complete) {
    const uint64_t shard = o_.shard_index, shards = o_.shard_count;
    auto keep = [shard, shards](uint64_t index) { return index % shards == shard; };
    std::deque<std::shared_ptr<PendingBatch>> window;
    auto batch = NewBatch();
    std::vector<char*> dst(decoder_->inputs().size());
    std::vector<std::string*> bytes_dst(decoder_->inputs().size());
    RawRow row;
    Status failed;
    // Writes the answered batches at the front, waiting for the front one while more
    // than `keep` are left.
    auto drain = [&](size_t keep) -> bool {
      while (!window.empty()) {
        {
          std::unique_lock<std::mutex> lock(mu_);
          if (!window.front()->done) {
            if (window.size() <= keep) return true;
            cv_.wait(lock, [&] { return window.front()->done; });
          }
        }
        auto front = window.front();
        window.pop_front();
        failed = WriteBatch(*front);
        if (!failed.ok()) return false;
        progress.Update(ckpt_.rows_ok + ckpt_.rows_failed, ckpt_.rows_failed, ckpt_.input_offset);
      }
      return true;
    };
    auto send = [&]() -> bool {
      batch->end_offset = reader_->offset();
      batch->end_row = reader_->next_index();
      batch->end_line = reader_->next_line();
      window.push_back(batch);
      Submit(batch);
      batch = NewBatch();
      return drain(static_cast<size_t>(o_.concurrency));
    };
    bool ok = true;
    const size_t ncarry = decoder_->carry_names().size();
    // This job's input rows so far (ok or failed), for the Parquet row groups' ends; a
    // checkpoint is taken only where every row before it is written.
    uint64_t taken = ckpt_.rows_ok + ckpt_.rows_failed;
    const auto group = static_cast<uint64_t>(std::max<int64_t>(1, o_.row_group_rows));
    auto point_dst = [&](size_t r) {
      for (size_t i = 0; i < dst.size(); ++i) {
        const ModelInput& in = decoder_->inputs()[i];
        dst[i] = batch->buffers[i].data() + r * in.width * DataTypeSize(in.datatype);
        bytes_dst[i] = in.datatype == DataType::kBytes ? &batch->buffers[i] : nullptr;
      }
    };
    // A batch closes on its last row, on errors alone (so a file of bad rows still
    // checkpoints) and at the end of an output row group.
    auto full = [&] {
      return batch->rows.size() == static_cast<size_t>(batch_rows_) ||
             batch->errors.size() >= static_cast<size_t>(batch_rows_) || batch->ends_row_group;
    };
    if (reader_->format() == Format::kParquet && shards == 1) {
      // Whole runs of a record batch at once, each ending at or before the row where the
      // loop below would close the batch, so the batches are the same.
      ParquetRun run;
      while (ok) {
        uint64_t want = static_cast<uint64_t>(batch_rows_) - std::max(batch->rows.size(), batch->errors.size());
        if (parquet_) want = std::min(want, group - taken % group);
        if (!reader_->NextRun(static_cast<size_t>(want), &run)) break;
        point_dst(batch->rows.size());
        decoder_->DecodeRun(*reader_, run, dst.data(), &batch->carried, &batch->rows, &batch->errors, bytes_dst.data());
        taken += run.rows;
        batch->ends_row_group = parquet_ && taken % group == 0;
        if (full()) ok = send();
      }
    }
    while (ok && reader_->Next(&row, keep)) {
      if (row.skipped) continue;
      const size_t r = batch->rows.size();
      point_dst(r);
      Status s = decoder_->Decode(row, dst.data(), &batch->carried, bytes_dst.data());
      if (s.ok()) {
        batch->rows.push_back(row.index);
      } else {
        batch->carried.resize(r * ncarry);
        batch->errors.emplace_back(row.index, s.message());
      }
      ++taken;
      batch->ends_row_group = parquet_ && taken % group == 0;
      if (full()) ok = send();
    }
    if (ok && !reader_->read_error().ok()) {
      // A part of the input that does not decode (a corrupt Parquet page): what came
      // before it is written and checkpointed, the job stops naming it.
      if (drain(0)) {
        Status saved = Durable() ? SaveProgress(false) : Status::Ok();
        failed = saved.ok() ? reader_->read_error() : saved;
      }
      ok = false;
    }
    if (ok && (!batch->rows.empty() || !batch->errors.empty())) ok = send();
    if (ok) ok = drain(0);
    if (!ok) {
      // Let the requests still in flight answer before their batches go away.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        for (const auto& b : window)
          if (!b->done) return false;
        return true;
      });
      progress.Finish();
      return failed;
    }
    // The reader may have moved past trailing blank lines or other shards' rows.
    ckpt_.input_offset = reader_->offset();
    ckpt_.next_row = reader_->next_index();
    ckpt_.next_line = reader_->next_line();
  }
  progress.Finish();
  FERRY_RETURN_IF_ERROR(Finish());
  summary_.rows_ok = ckpt_.rows_ok;
  summary_.rows_failed = ckpt_.rows_failed;
  summary_.seconds = progress.elapsed_seconds();
  return summary_;
}

}  // namespace

namespace {

class InProcess : public InferBackend {
 public:
  explicit InProcess(server::Server& server) : server_(server) {}
  Result<ResolvedModel> Resolve(const std::string& model, const std::string& version) override {
    FERRY_ASSIGN_OR_RETURN(server::ModelMetadata md, server_.GetModelMetadata(model, version));
    if (md.versions.empty()) return Unavailable("model '" + model + "' has no ready version");
    ResolvedModel r;
    r.version = version.empty() ? md.versions.back() : version;
    for (const auto& v : md.versions)
      if (version.empty() && std::stoll(v) > std::stoll(r.version)) r.version = v;
    FERRY_ASSIGN_OR_RETURN(r.config, server_.GetModelConfig(model, r.version));
    return r;
  }
  void Infer(InferRequest request, InferCallback done) override { server_.Infer(std::move(request), std::move(done)); }

 private:
  server::Server& server_;  // not owned
};

}  // namespace

std::unique_ptr<InferBackend> InProcessBackend(server::Server& server) { return std::make_unique<InProcess>(server); }

Result<BatchJobSummary> RunBatchJob(InferBackend& backend, const BatchJobOptions& options) {
  Job job(backend, options);
  return job.Run();
}

Result<BatchJobSummary> RunBatchJob(server::Server& server, const BatchJobOptions& options) {
  InProcess backend(server);
  return RunBatchJob(backend, options);
}

}  // namespace ferry::batch
