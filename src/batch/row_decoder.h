#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "batch/input_reader.h"
#include "core/data_type.h"
#include "core/result.h"
#include "core/shape.h"

namespace ferry::batch {

// A model input as the job feeds it: one row gives `width` = product(dims) elements.
struct ModelInput {
  std::string name;
  DataType datatype = DataType::kInvalid;
  Shape dims;  // without the batch dimension
  size_t width = 1;
};

// "col:tensor" from --map; several entries for one tensor are concatenated in order.
struct ColumnMapping {
  std::string column;
  std::string tensor;
};

// Parses one --map entry, "COLUMN:INPUT" (the last ':' splits, so a column name may
// hold one). INVALID_ARGUMENT naming --map otherwise.
Result<ColumnMapping> ParseColumnMapping(const std::string& entry);

// Turns the input's rows into the model's input tensors: which columns feed which
// input (and where in its row), which are carried through to the output. The plan is
// fixed before the first row, so a schema that does not fit the model is refused up
// front, naming the column or input; a row that does not fit its plan (a non-numeric
// cell, a missing key, a wrong cell count) fails alone, with a message naming the column.
// Thread-safety: Decode keeps scratch state: one thread at a time.
class RowDecoder {
 public:
  // Resolves each model input, in this order: the --map entries naming it; a column of
  // its own name; columns NAME_0 .. NAME_{width-1}; and, for a model with one input, all
  // the columns that are not carried (the ".npy" case). INVALID_ARGUMENT naming the
  // input or column when none fits, when widths differ, or when a datatype cannot be fed
  // (BYTES from a .npy file) or a dimension is variable. A BYTES (string) input takes
  // each cell's text as one element (CSV, Parquet: as the cell holds it; JSONL: a JSON
  // string).
  static Result<RowDecoder> Create(const InputReader& reader, std::vector<ModelInput> inputs,
                                   const std::vector<std::string>& carry, const std::vector<ColumnMapping>& map);
  // The same plan for rows that come one by one rather than from a file (ferry stream's
  // messages: one CSV record or one JSON object each), over the columns given.
  // `format` is kCsv or kJsonl. BYTES inputs take a CSV cell's text or a JSON string.
  static Result<RowDecoder> Create(Format format, std::vector<Column> columns, std::vector<ModelInput> inputs,
                                   const std::vector<std::string>& carry, const std::vector<ColumnMapping>& map);

  const std::vector<ModelInput>& inputs() const { return inputs_; }
  const std::vector<std::string>& carry_names() const { return carry_names_; }
  // Per column, 1 for the columns fed to a numeric (not BYTES) input and not carried:
  // those whose Parquet numbers Decode converts straight from their own type, as from a
  // .npy file, with no text round trip (InputReader::set_typed_columns).
  std::vector<uint8_t> TypedColumns() const;
  // Carried values are JSON texts (JSONL input) rather than plain cell texts (CSV).
  bool carried_is_json() const { return format_ == Format::kJsonl; }
  // A readable line of the plan, e.g. "input <- a, b, c, d", for the log.
  std::string Describe() const;

  // Decodes `row`: input i's `width` elements go to dst[i]; carried values are appended
  // to `carried` (carry_names().size() of them) only when the row decodes. On error,
  // dst may hold part of the row. A BYTES input's elements are appended instead to
  // *bytes[i], in the tensor encoding (a 4-byte little-endian length, then the bytes),
  // only when the row decodes; `bytes` may be null when no input is BYTES.
  Status Decode(const RawRow& row, char* const* dst, std::vector<std::string>* carried,
                std::string* const* bytes = nullptr);
  // Decodes the rows of a Parquet run (InputReader::NextRun), with the outcome Decode
  // gives each one: the rows that decode go to dst[i] one after another (the j-th at
  // dst[i] + j * the input's row bytes; BYTES elements appended to *bytes[i]), their
  // carried values to `carried` and their indices to `decoded`; the others, with Decode's
  // message, to `failed`. Numeric columns of numeric inputs are copied (or converted) a
  // column at a time straight from Arrow's arrays; a run with a BYTES input or a column
  // fed as text goes row by row through Decode.
  // REQUIRES: reader.set_typed_columns(TypedColumns()) was called before its first row.
  void DecodeRun(InputReader& reader, const ParquetRun& run, char* const* dst, std::vector<std::string>* carried,
                 std::vector<uint64_t>* decoded, std::vector<std::pair<uint64_t, std::string>>* failed,
                 std::string* const* bytes = nullptr);

 private:
  struct Target {
    int input = -1;     // -1: not fed
    size_t offset = 0;  // first element within the input's row
    size_t width = 1;   // elements this column gives
    DataType datatype = DataType::kInvalid;  // the input's
    size_t element_size = 0;                 // the datatype's (0 for BYTES)
    size_t byte_offset = 0;                  // offset * element_size
  };
  RowDecoder() = default;
  // The fast path for a CSV record given as one plain line (RawRow::csv_line): splits
  // and parses in one pass. False, with `carried` untouched, when the line needs the
  // full rules or fails (Decode then splits it and gives the precise error).
  bool DecodeCsvLine(std::string_view line, char* const* dst, std::vector<std::string>* carried,
                     std::string* const* bytes);
  // Appends the elements that Decode put in bytes_cells_ to `bytes`.
  void AppendBytes(std::string* const* bytes) const;
  static Result<RowDecoder> Plan(RowDecoder d, Format format, std::vector<Column> columns,
                                 std::vector<ModelInput> inputs, const std::vector<std::string>& carry,
                                 const std::vector<ColumnMapping>& map);

  Format format_ = Format::kCsv;
  DataType npy_type_ = DataType::kInvalid;
  std::vector<ModelInput> inputs_;
  std::vector<Column> columns_;
  std::vector<Target> targets_;      // per column
  std::vector<size_t> fed_columns_;  // columns with a target, in column order
  std::vector<size_t> carry_columns_;
  std::vector<std::string> carry_names_;
  std::vector<std::string_view> line_cells_;  // DecodeCsvLine's cells, per column
  std::vector<const char*> cell_ends_;        // DecodeCsvLine's: each cell's ',' (the last: the line's end)
  std::vector<size_t> bytes_inputs_;          // the BYTES inputs
  // Per input, the row's BYTES elements by position, views valid during Decode.
  std::vector<std::vector<std::string_view>> bytes_cells_;
  CsvRecord split_;                           // a csv_line the fast path gave back, split
  std::vector<size_t> row_bytes_;             // per input: one row's bytes (0 for BYTES)
  std::vector<uint8_t> typed_columns_;        // TypedColumns()
  // Per fed column (in fed_columns_ order): 1 where it and the next three fill four
  // adjacent 4-byte elements of one input (DecodeRun copies them together).
  std::vector<uint8_t> quads_;
  // DecodeRun's scratch: per row of the run 0 (decodes), 1 (a null in a fed column: no
  // place in dst) or 2 (a value that does not convert); each row's place in dst; one row
  // per input for the rows that fail; the row given to Decode.
  std::vector<uint8_t> run_bad_;
  std::vector<size_t> run_pos_;
  std::vector<std::string> run_scratch_;
  std::vector<char*> run_dst_;
  RawRow run_row_;
};

// Stores one element of `type` parsed from `text` (a CSV cell) at `dst`. False when
// the text is not a number of that type (or out of its range).
bool ParseElement(DataType type, std::string_view text, char* dst);

}  // namespace ferry::batch
