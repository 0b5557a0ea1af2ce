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
  // Per column, 1 where a number may come typed (the columns a decoder feeds to a numeric
  // input and does not carry).
  void set_typed_columns(std::vector<uint8_t> columns) { typed_columns_ = std::move(columns); }
  const Status& error() const { return error_; }

 private:
  struct Impl;
  ParquetInput() = default;

  std::unique_ptr<Impl> impl_;
  std::vector<std::string> names_, types_;
  std::vector<uint8_t> typed_columns_;
  uint64_t num_rows_ = 0;
  Status error_;
};

}  // namespace ferry::batch
