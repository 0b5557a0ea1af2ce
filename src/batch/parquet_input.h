#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/data_type.h"
#include "core/result.h"

namespace ferry::batch {

// A cell handed out as a number of its own type rather than as text: `data` points at
// one element of `type` (valid until the next row); null when the cell is text.
struct TypedCell {
  DataType type = DataType::kInvalid;
  const std::byte* data = nullptr;
};

// What a column's values are, from its Arrow type, for the plan: RowDecoder refuses a
// column that can never feed a numeric input before the first row.
enum class ValueKind : uint8_t {
  kUnknown,  // not known before reading (CSV, JSONL, .npy)
  kNumber,   // integers and floats (handed out as TypedCells where asked)
  kBool,     // booleans (text true/false)
  kText,     // strings and decimals: text that may hold a number
  kOther,    // dates, timestamps, binary, lists, structs, ...: no number
};

// Rows [first, first + rows) of the record batch in hand, column by column, as
// ParquetInput::NextRun hands them out. Valid until the next NextRun, Next or Seek.
struct ParquetRun {
  struct Column {
    // A numeric column's element of row `first`, the others following every
    // DataTypeSize(values.type) bytes; data null for the other types.
    TypedCell values;
    // Arrow's validity bitmap (a set bit: a value), null when the record batch holds no
    // null in the column; `validity_bit` is row `first`'s bit.
    const uint8_t* validity = nullptr;
    int64_t validity_bit = 0;
    bool IsNull(size_t k) const {
      if (validity == nullptr) return false;
      const int64_t b = validity_bit + static_cast<int64_t>(k);
      return ((validity[b >> 3] >> (b & 7)) & 1) == 0;
    }
  };
  uint64_t first = 0;  // 0-based file row
  size_t rows = 0;
  std::vector<Column> columns;  // per column of the file
};

// Reads the rows of a Parquet file in order, one record batch (at most kBatchRows rows
// of one row group) in memory at a time, and hands out each row's values as text: the
// cells a CSV row would have, so the same decoder parses them. Numbers are written as
// the output writer writes them (AppendElement: shortest round-trip form, nan, inf),
// booleans as true/false, strings as they are; other Parquet types (dates, timestamps,
// decimals, lists, ...) as Arrow prints them, which a model input does not parse (the
// row fails, naming the column) but --carry copies. A null is an empty cell, flagged
// in `nulls`. Columns named by set_typed_columns that hold integers or floats are handed
// out as TypedCells instead, with no text (the decoder converts them straight into the
// tensor, as from a .npy file, and formats one only for an error message).
// NextRun hands out several rows at a time instead, with the numbers in place, for a
// decoder that copies whole columns (RowDecoder::DecodeRun); RunRow and AppendRunCell give
// what Next would have for one row of the run.
// Built only with FERRY_WITH_PARQUET (Arrow C++ from the pyarrow wheel); without it
// Open says so. Thread-safety: one thread at a time.
class ParquetInput {
 public:
  static constexpr int64_t kBatchRows = 4096;

  // Opens `path` and reads its footer: the columns (top-level fields) and row counts.
  // INVALID_ARGUMENT naming the file when it is not Parquet or cannot be read.
  static Result<std::unique_ptr<ParquetInput>> Open(const std::filesystem::path& path);
  ~ParquetInput();

  const std::vector<std::string>& column_names() const { return names_; }
  // Parquet/Arrow type of each column, as Arrow names it ("double", "string").
  const std::vector<std::string>& column_types() const { return types_; }
  const std::vector<ValueKind>& column_kinds() const { return kinds_; }
  uint64_t num_rows() const { return num_rows_; }
  int num_row_groups() const;

  // Continues at row `row` (0-based, in file order): reading restarts at the row group
  // holding it. INVALID_ARGUMENT past the last row.
  Status Seek(uint64_t row);
  // Reads the next row's cells into `cells` (views valid until the next call) and
  // their null flags into `nulls`; false at the end of the file. A read or decode
  // error mid-file ends the rows and is kept in error().
  // With `typed` (one per column), a numeric column that set_typed_columns named comes
  // as typed[c], its cell empty.
  bool Next(std::vector<std::string_view>* cells, std::vector<uint8_t>* nulls,
            std::vector<TypedCell>* typed = nullptr);
  // The next rows, at most `max_rows` (>= 1) and all from one record batch, into `run`;
  // false at the end of the file or on a read error (kept in error(), as for Next).
  bool NextRun(size_t max_rows, ParquetRun* run);
  // Row `k` of the last run, as Next would have given it.
  void RunRow(size_t k, std::vector<std::string_view>* cells, std::vector<uint8_t>* nulls,
              std::vector<TypedCell>* typed);
  // Appends the text of column `c` in row `k` of the last run (nothing for a null), as
  // Next would have given it untyped.
  void AppendRunCell(size_t c, size_t k, std::string* out) const;
  // Per column, 1 where a number may come typed (the columns a decoder feeds to a numeric
  // input and does not carry).
  void set_typed_columns(std::vector<uint8_t> columns) { typed_columns_ = std::move(columns); }
  const Status& error() const { return error_; }

 private:
  struct Impl;
  ParquetInput() = default;

  std::unique_ptr<Impl> impl_;
  std::vector<std::string> names_, types_;
  std::vector<ValueKind> kinds_;
  std::vector<uint8_t> typed_columns_;
  uint64_t num_rows_ = 0;
  Status error_;
};

}  // namespace ferry::batch
