#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "batch/input_reader.h"
#include "core/result.h"
#include "core/tensor.h"

namespace ferry::batch {

// The tensors of one answered batch, checked by OutputWriter::CheckTensors.
struct CheckedOutputs {
  std::vector<size_t> widths;  // per output: elements per row
  // Per output: for a BYTES one, its elements (views into its tensor, row-major);
  // empty for the others.
  std::vector<std::vector<std::string_view>> strings;
};

// A model output the job writes, as the model config declares it.
struct ModelOutput {
  std::string name;
  DataType datatype = DataType::kInvalid;
  Shape dims;        // without the batch dimension
  size_t width = 0;  // product(dims); 0 when a dimension is variable
};

// Formats result rows in one output format (Parquet rows go through ParquetOutput;
// for Parquet this class checks the outputs and the tensors, and names the columns). Columns: the carried ones first (in --carry
// order), then each output: a width-1 output is one column named after it, a wider one
// is NAME_0 .. NAME_{w-1} (row-major). CSV writes them as cells (a header row first);
// JSONL as one object per line {"carried": ..., "NAME": scalar or [array]}; .npy as the
// raw elements of one output, behind a fixed-size header rewritten once the row count is
// known. Numbers are written in their shortest form that reads back to the same value.
// BYTES (string) elements are written as text: CSV cells quoted as RFC 4180 needs them,
// JSON strings, Parquet strings; JSONL and Parquet take UTF-8 only.
// Thread-safety: immutable after Create; AppendRow may run on several threads.
class OutputWriter {
 public:
  // INVALID_ARGUMENT when the outputs cannot be written in `format`: BYTES outputs in
  // .npy, variable widths for CSV and .npy, several outputs or carried columns for .npy, or a
  // carried column named like an output column.
  static Result<std::unique_ptr<OutputWriter>> Create(Format format, std::vector<std::string> carry_names,
                                                      bool carried_is_json, std::vector<ModelOutput> outputs);

  Format format() const { return format_; }
  const std::vector<ModelOutput>& outputs() const { return outputs_; }

  // What a new file starts with: the CSV header row, the .npy header for `rows` rows
  // (always the same length, whatever the count), nothing for JSONL.
  // The Parquet magic "PAR1" (ParquetOutput writes the rest).
  std::string Header(uint64_t rows) const;

  // The output columns after the carried ones: NAME, or NAME_0 .. NAME_{w-1} for a
  // wider output (CSV's header, Parquet's columns), each with its output's index.
  std::vector<std::pair<std::string, size_t>> OutputColumns() const;

  // Checks that outputs[i] holds `batch` rows of outputs()[i] (its datatype, its width
  // per row; for BYTES, well-formed elements, and UTF-8 ones for JSONL and Parquet) and
  // returns each one's width (and BYTES elements). INTERNAL naming the output otherwise;
  // INVALID_ARGUMENT for an element that is not UTF-8.
  Result<CheckedOutputs> CheckTensors(const std::vector<const Tensor*>& outputs, size_t batch) const;

  // Appends result row `r` to `out`: `carried` points at its carry_names().size()
  // values; outputs[i] is the tensor for outputs()[i], of shape [batch, ...].
  // INTERNAL when a tensor's elements per row do not match the declared width.
  Status AppendRow(const std::string* carried, const std::vector<const Tensor*>& outputs, size_t r,
                   size_t batch, std::string* out) const;
  // Appends all `batch` rows of the tensors (`carried` holds batch x carry_names().size()
  // values), checking the tensors once; `out` is left as it was on error.
  Status AppendRows(const std::string* carried, const std::vector<const Tensor*>& outputs, size_t batch,
                    std::string* out) const;

 private:
  OutputWriter() = default;
  // AppendRow for a text format, the tensors already checked (their `widths`).
  void AppendTextRow(const std::string* carried, const std::vector<const Tensor*>& outputs,
                     const CheckedOutputs& checked, size_t r, std::string* out) const;

  Format format_ = Format::kCsv;
  std::vector<std::string> carry_names_;
  bool carried_is_json_ = false;
  std::vector<ModelOutput> outputs_;
};

// Appends element `i` of a tensor of `type` at `data` as text: shortest round-trip
// numbers, integers as integers, booleans as true/false; non-finite floats as NaN,
// Infinity, -Infinity (`json`) or nan, inf, -inf.
void AppendElement(DataType type, const std::byte* data, size_t i, bool json, std::string* out);

// Whether `s` is well-formed UTF-8 (what JSON and Parquet strings must be).
bool IsUtf8(std::string_view s);

// The text of a carried value: `v` itself, or the string a JSON string literal holds
// when `is_json` (a JSONL input's carried values are JSON).
std::string CarriedText(std::string_view v, bool is_json);

}  // namespace ferry::batch
