#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "batch/output_writer.h"
#include "core/result.h"
#include "core/tensor.h"

namespace ferry::batch {

// Writes a job's results as a Parquet file that can be resumed byte for byte. A Parquet
// file has no appendable byte stream: its footer (the metadata of every row group)
// comes last. So the file is built in pieces that each depend only on their rows:
//   - the 4-byte magic "PAR1" (OutputWriter::Header);
//   - row groups, appended one after another: FlushRowGroup encodes the buffered rows
//     as the column chunks of one row group placed at a given byte offset, and returns
//     them with that row group's metadata (a serialized Thrift FileMetaData holding it);
//   - at the end, Footer merges the row groups' metadata into the file's footer.
// The job keeps the row groups' metadata in a partial file beside the output, so a
// checkpoint at a row-group boundary holds all the footer needs, and the same rows
// give the same bytes whatever run wrote them.
//
// Columns: the carried ones (UTF-8 strings, JSON strings decoded as the CSV writer does),
// then the outputs as OutputWriter::OutputColumns names them (NAME, or NAME_0 ..
// NAME_{w-1} row-major for a wider output, so a Parquet output can feed another job
// as a CSV one can). Types: BOOL -> boolean, INT8..INT64 and UINT8..UINT64 -> the same
// width, FP16 -> halffloat, BF16 and FP32 -> float, FP64 -> double, BYTES -> string
// (UTF-8, which CheckTensors checks). Every column is
// required (no nulls). Pages are Snappy-compressed.
// Built only with FERRY_WITH_PARQUET; without it Create says so.
// Thread-safety: one thread at a time.
class ParquetOutput {
 public:
  struct RowGroup {
    std::string data;      // the column chunks, to go at the offset FlushRowGroup was given
    std::string metadata;  // serialized FileMetaData holding this row group only
  };

  // `writer` (a kParquet OutputWriter, which checked the outputs) names the columns;
  // it must outlive this object. UNIMPLEMENTED without Parquet support.
  static Result<std::unique_ptr<ParquetOutput>> Create(const OutputWriter& writer,
                                                       std::vector<std::string> carry_names, bool carried_is_json);
  ~ParquetOutput();

  // Buffers row `r` of `outputs` (checked by OutputWriter::CheckTensors, `checked` as it
  // returned) with its carried values (carry_names().size() of them).
  void AppendRow(const std::string* carried, const std::vector<const Tensor*>& outputs, const CheckedOutputs& checked,
                 size_t r);
  uint64_t buffered_rows() const { return buffered_; }

  // Encodes the buffered rows as one row group starting at byte `offset` (4 or more)
  // of the file, and empties the buffer. INTERNAL when Arrow fails.
  Result<RowGroup> FlushRowGroup(uint64_t offset);

  // The end of the file: the footer for the row groups whose metadata `metadata` holds
  // (FlushRowGroup's, in file order), its length and the closing magic. A file with no
  // row group gets a footer with the schema alone. INVALID_ARGUMENT when a record does
  // not parse.
  Result<std::string> Footer(const std::vector<std::string>& metadata) const;

 private:
  struct Impl;
  ParquetOutput() = default;
  std::unique_ptr<Impl> impl_;
  uint64_t buffered_ = 0;
};

}  // namespace ferry::batch
