#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "batch/csv.h"
#include "batch/npy.h"
#include "batch/parquet_input.h"
#include "core/result.h"

namespace ferry::batch {

// The file formats ferry batch reads and writes, by file name extension.
// kParquet is read only (ParquetInput; built with FERRY_WITH_PARQUET).
enum class Format { kCsv, kJsonl, kNpy, kParquet };
std::string_view FormatName(Format f);
// ".csv" -> kCsv, ".jsonl" / ".ndjson" -> kJsonl, ".npy" -> kNpy, ".parquet" ->
// kParquet; INVALID_ARGUMENT naming the file otherwise.
Result<Format> FormatFromPath(const std::filesystem::path& path);
// "csv", "jsonl", "npy", "parquet" (what --input-format takes); INVALID_ARGUMENT otherwise.
Result<Format> FormatFromName(std::string_view name);

// A named column of the input and how many values one row holds in it: 1 for a CSV
// cell or a JSON scalar, the length of a JSON array (as in the first row), the row
// width of a 2-D .npy array (whose one column is named "" ).
struct Column {
  Column() = default;
  Column(std::string n, size_t w, ValueKind k = ValueKind::kUnknown, std::string t = {})
      : name(std::move(n)), width(w), kind(k), type(std::move(t)) {}
  std::string name;
  size_t width = 1;
  ValueKind kind = ValueKind::kUnknown;  // Parquet: from the column's type
  std::string type;                      // Parquet: the type, as Arrow names it ("float", "string")
};

// One input row as its format frames it; decoding into tensors is RowDecoder's job.
// Views point into the mapped file or the reader's buffers and stay valid until the
// next call to Next.
struct RawRow {
  uint64_t index = 0;  // 0-based data row (the header and blank lines do not count)
  uint64_t line = 0;   // 1-based line of the row's start (CSV, JSONL); 0 for .npy
  const CsvRecord* csv = nullptr;  // kCsv, kParquet (the values as text)
  // kCsv read with set_defer_csv_split(true): a record on one line with no '"' and no
  // '\r' comes as its text alone (without the line break), `csv` null; RowDecoder
  // splits it as it decodes. Any other record comes split, in `csv`.
  std::string_view csv_line;
  const std::vector<uint8_t>* nulls = nullptr;  // kParquet: 1 where csv->cells[c] is a null
  // kParquet: per column, a number handed out in its own type (data null: the text in
  // csv->cells[c]); see InputReader::set_typed_columns.
  const std::vector<TypedCell>* typed = nullptr;
  std::string_view text;           // kJsonl: the line; kNpy: the row's bytes
  bool skipped = false;            // another shard's row: not framed, only counted
};

// Reads an input file row by row, in order, from a read-only memory map, and can
// restart at a byte offset it reported earlier (the resume point of a checkpoint).
// A Parquet file is read through ParquetInput instead, a record batch at a time; its
// positions (offset(), size_bytes(), Seek) count rows, not bytes.
// Thread-safety: one thread at a time.
class InputReader {
 public:
  // Maps `path`, reads the CSV header / the .npy header / the first JSONL object's
  // keys. Errors name the file.
  static Result<std::unique_ptr<InputReader>> Open(const std::filesystem::path& path, Format format);
  ~InputReader();

  // Parquet: per column, 1 where a number may come as a TypedCell rather than as text
  // (RowDecoder::TypedColumns); ignored for the other formats.
  void set_typed_columns(std::vector<uint8_t> columns) {
    if (parquet_) parquet_->set_typed_columns(std::move(columns));
  }
  Format format() const { return format_; }
  const std::vector<Column>& columns() const { return columns_; }
  // The .npy element type; kInvalid for text formats.
  DataType npy_datatype() const { return npy_.datatype; }
  uint64_t size_bytes() const { return size_; }
  // Rows in the file when known without reading it (.npy).
  std::optional<uint64_t> row_count() const;

  // Byte offset just past the last row returned (where Seek can resume).
  uint64_t offset() const { return pos_; }
  uint64_t next_index() const { return next_index_; }
  // Continues at `offset`, which must be one offset() returned for row `index`
  // (the next row read gets index `index`, its line `line`).
  Status Seek(uint64_t offset, uint64_t index, uint64_t line);
  uint64_t next_line() const { return next_line_; }
  // Why Next returned false before the end of the file (a Parquet page that does not
  // decode); OK otherwise.
  Status read_error() const;

  // CSV: hand plain one-line records over unsplit (RawRow::csv_line), so the decoder
  // reads their bytes once. Off by default: `csv` is always set.
  void set_defer_csv_split(bool defer) { defer_csv_split_ = defer; }

  // Parquet only: the next rows (at most `max_rows`, at least 1, from one record batch),
  // column by column, in `run`; false at the end of the file or on a read error
  // (read_error()). offset() and next_index() move past them. Shards are the caller's.
  bool NextRun(size_t max_rows, ParquetRun* run);
  // Row `k` of the last run, as Next would have given it (index run.first + k). Views are
  // valid until the next call to Next, NextRun or RunRow.
  void RunRow(const ParquetRun& run, size_t k, RawRow* row);
  // Appends the text of column `c` in row `k` of the last run (a null: nothing).
  void AppendRunCell(size_t c, size_t k, std::string* out) const { parquet_->AppendRunCell(c, k, out); }

  // Reads the next row into `row`; false at the end of the file. Rows for which
  // `keep(index)` is false are only counted (row->skipped).
  template <typename Keep>
  bool Next(RawRow* row, const Keep& keep) {
    return NextImpl(row, keep(next_index_));
  }

 private:
  InputReader() = default;
  bool NextImpl(RawRow* row, bool keep);

  Format format_ = Format::kCsv;
  const char* map_ = nullptr;
  size_t size_ = 0;
  std::string_view text_;
  std::vector<Column> columns_;
  NpyHeader npy_;
  size_t npy_row_bytes_ = 0;
  uint64_t data_start_ = 0;  // offset of the first data row
  uint64_t pos_ = 0;
  uint64_t next_index_ = 0;
  uint64_t next_line_ = 1;
  CsvRecord record_;
  bool defer_csv_split_ = false;
  std::unique_ptr<ParquetInput> parquet_;
  std::vector<uint8_t> nulls_;
  std::vector<TypedCell> typed_;
};

}  // namespace ferry::batch
