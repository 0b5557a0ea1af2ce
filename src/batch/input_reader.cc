#include "batch/input_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <rapidjson/document.h>

namespace ferry::batch {

std::string_view FormatName(Format f) {
  switch (f) {
    case Format::kCsv: return "csv";
    case Format::kJsonl: return "jsonl";
    case Format::kNpy: return "npy";
    case Format::kParquet: return "parquet";
  }
  return "?";
}

Result<Format> FormatFromPath(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".csv") return Format::kCsv;
  if (ext == ".jsonl" || ext == ".ndjson") return Format::kJsonl;
  if (ext == ".npy") return Format::kNpy;
  if (ext == ".parquet") return Format::kParquet;
  return InvalidArgument("'" + path.string() +
                         "': unknown format; the file name must end in .csv, .jsonl, .npy or .parquet");
}

Result<Format> FormatFromName(std::string_view name) {
  for (Format f : {Format::kCsv, Format::kJsonl, Format::kNpy, Format::kParquet})
    if (FormatName(f) == name) return f;
  return InvalidArgument("unknown format '" + std::string(name) + "'; expected csv, jsonl, npy or parquet");
}

Status InputReader::read_error() const { return parquet_ ? parquet_->error() : Status::Ok(); }

InputReader::~InputReader() {
  if (map_ != nullptr) munmap(const_cast<char*>(map_), size_);
}

std::optional<uint64_t> InputReader::row_count() const {
  if (format_ == Format::kParquet) return parquet_->num_rows();
  if (format_ != Format::kNpy) return std::nullopt;
  return npy_.shape.empty() ? 1 : static_cast<uint64_t>(npy_.shape[0]);
}

Result<std::unique_ptr<InputReader>> InputReader::Open(const std::filesystem::path& path, Format format) {
  std::unique_ptr<InputReader> r(new InputReader());
  r->format_ = format;
  const std::string name = "input '" + path.string() + "'";
  if (format == Format::kParquet) {
    // Arrow reads the file itself; positions are row numbers.
    FERRY_ASSIGN_OR_RETURN(r->parquet_, ParquetInput::Open(path));
    const ParquetInput& p = *r->parquet_;
    for (size_t c = 0; c < p.column_names().size(); ++c)
      r->columns_.push_back({p.column_names()[c], 1, p.column_kinds()[c], p.column_types()[c]});
    r->size_ = r->parquet_->num_rows();
    r->next_line_ = 0;
    return r;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return InvalidArgument(name + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(name + ": not a regular file");
  }
  r->size_ = static_cast<size_t>(st.st_size);
  if (r->size_ > 0) {
    void* m = mmap(nullptr, r->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      ::close(fd);
      return InvalidArgument(name + ": cannot map: " + std::strerror(errno));
    }
    madvise(m, r->size_, MADV_SEQUENTIAL);
    r->map_ = static_cast<const char*>(m);
  }
  ::close(fd);
  r->text_ = std::string_view(r->map_ ? r->map_ : "", r->size_);

  switch (format) {
    case Format::kCsv: {
      size_t pos = 0;
      // A UTF-8 byte-order mark (spreadsheet exports) is not part of the first name.
      if (r->text_.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;
      if (pos >= r->size_) return InvalidArgument(name + ": empty; a CSV input needs a header row");
      NextCsvRecord(r->text_, pos, &r->record_);
      if (!r->record_.error.empty()) return InvalidArgument(name + ": header row: " + r->record_.error);
      for (auto cell : r->record_.cells) {
        for (const auto& c : r->columns_)
          if (c.name == cell) return InvalidArgument(name + ": header row: column '" + std::string(cell) + "' appears twice");
        r->columns_.push_back({std::string(cell), 1});
      }
      r->data_start_ = r->record_.end;
      r->next_line_ = 1 + r->record_.lines;
      break;
    }
    case Format::kJsonl: {
      // The columns are the first object's keys; later rows are looked up by name.
      size_t pos = 0;
      uint64_t line = 1;
      while (pos < r->size_) {
        size_t nl = r->text_.find('\n', pos);
        std::string_view l = r->text_.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? r->size_ : nl + 1;
        if (l.find_first_not_of(" \t\r") == std::string_view::npos) {
          ++line;
          continue;
        }
        rapidjson::Document d;
        d.Parse(l.data(), l.size());
        if (d.HasParseError() || !d.IsObject()) {
          ++line;
          continue;  // a bad line is that row's error; the next good one gives the columns
        }
        for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m)
          r->columns_.push_back({std::string(m->name.GetString(), m->name.GetStringLength()),
                                 m->value.IsArray() ? m->value.Size() : 1});
        break;
      }
      if (r->columns_.empty()) return InvalidArgument(name + ": no line holds a JSON object to take the columns from");
      r->data_start_ = 0;
      break;
    }
    case Format::kNpy: {
      auto h = ParseNpyHeader(r->text_);
      if (!h.ok()) return InvalidArgument(name + ": " + h.status().message());
      r->npy_ = *h;
      if (r->npy_.shape.size() > 2 || r->npy_.shape.empty())
        return InvalidArgument(name + ": a .npy input must be 1-D (one value per row) or 2-D (rows x features), not shape " +
                               ShapeToString(r->npy_.shape));
      const size_t width = r->npy_.shape.size() == 2 ? static_cast<size_t>(r->npy_.shape[1]) : 1;
      r->npy_row_bytes_ = width * DataTypeSize(r->npy_.datatype);
      const uint64_t rows = static_cast<uint64_t>(r->npy_.shape[0]);
      if (r->npy_.data_offset + rows * r->npy_row_bytes_ > r->size_)
        return InvalidArgument(name + ": truncated: shape " + ShapeToString(r->npy_.shape) + " needs " +
                               std::to_string(r->npy_.data_offset + rows * r->npy_row_bytes_) + " bytes, the file has " +
                               std::to_string(r->size_));
      r->columns_.push_back({"", width});
      r->data_start_ = r->npy_.data_offset;
      r->next_line_ = 0;
      break;
    }
    case Format::kParquet: break;  // opened above
  }
  r->pos_ = r->data_start_;
  return r;
}

Status InputReader::Seek(uint64_t offset, uint64_t index, uint64_t line) {
  if (offset < data_start_ || offset > size_)
    return InvalidArgument("resume offset " + std::to_string(offset) + " is outside the input's rows");
  if (format_ == Format::kParquet) {
    if (offset != index) return InvalidArgument("resume offset " + std::to_string(offset) + " is not Parquet row " + std::to_string(index));
    FERRY_RETURN_IF_ERROR(parquet_->Seek(index));
  }
  if (format_ == Format::kNpy && (offset - data_start_) != index * npy_row_bytes_)
    return InvalidArgument("resume offset " + std::to_string(offset) + " is not the start of .npy row " + std::to_string(index));
  pos_ = offset;
  next_index_ = index;
  next_line_ = line;
  return Status::Ok();
}

bool InputReader::NextRun(size_t max_rows, ParquetRun* run) {
  if (!parquet_ || !parquet_->NextRun(max_rows, run)) return false;
  pos_ += run->rows;
  next_index_ += run->rows;
  return true;
}

void InputReader::RunRow(const ParquetRun& run, size_t k, RawRow* row) {
  parquet_->RunRow(k, &record_.cells, &nulls_, &typed_);
  *row = RawRow{};
  row->index = run.first + k;
  row->csv = &record_;
  row->nulls = &nulls_;
  row->typed = &typed_;
}

bool InputReader::NextImpl(RawRow* row, bool keep) {
  row->csv = nullptr;
  row->csv_line = {};
  row->text = {};
  row->nulls = nullptr;
  row->typed = nullptr;
  row->skipped = !keep;
  switch (format_) {
    case Format::kParquet:
      if (!parquet_->Next(&record_.cells, &nulls_, &typed_)) return false;
      row->line = 0;
      row->csv = &record_;
      row->nulls = &nulls_;
      row->typed = &typed_;
      ++pos_;
      break;
    case Format::kCsv:
      // Blank lines are not rows.
      while (pos_ < size_ && (text_[pos_] == '\n' || text_[pos_] == '\r')) {
        if (text_[pos_] == '\n') ++next_line_;
        ++pos_;
      }
      if (pos_ >= size_) return false;
      row->line = next_line_;
      if (keep && defer_csv_split_) {
        // One memchr per kind of byte that makes a record more than one plain line.
        const char* start = text_.data() + pos_;
        const size_t rest = size_ - pos_;
        const char* nl = static_cast<const char*>(std::memchr(start, '\n', rest));
        const size_t len = nl ? static_cast<size_t>(nl - start) : rest;
        size_t body = len > 0 && start[len - 1] == '\r' ? len - 1 : len;
        if (std::memchr(start, '"', len) == nullptr && std::memchr(start, '\r', body) == nullptr) {
          row->csv_line = std::string_view(start, body);
          pos_ += nl ? len + 1 : len;
          if (nl || body < len) ++next_line_;
          break;
        }
      }
      if (keep) {
        NextCsvRecord(text_, pos_, &record_);
        row->csv = &record_;
        pos_ = record_.end;
        next_line_ += record_.lines;
      } else {
        size_t lines = 0;
        pos_ = SkipCsvRecord(text_, pos_, &lines);
        next_line_ += lines;
      }
      break;
    case Format::kJsonl: {
      while (true) {
        if (pos_ >= size_) return false;
        size_t nl = text_.find('\n', pos_);
        size_t end = nl == std::string_view::npos ? size_ : nl;
        std::string_view l = text_.substr(pos_, end - pos_);
        pos_ = nl == std::string_view::npos ? size_ : nl + 1;
        row->line = next_line_++;
        if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        row->text = l;
        break;
      }
      break;
    }
    case Format::kNpy:
      if (next_index_ >= *row_count()) return false;
      row->line = 0;
      row->text = text_.substr(pos_, npy_row_bytes_);
      pos_ += npy_row_bytes_;
      break;
  }
  row->index = next_index_++;
  return true;
}

}  // namespace ferry::batch
