#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "batch/row_decoder.h"
#include "core/infer_request.h"
#include "core/result.h"

// What ferry stream reads from and writes to Kafka, as pure functions over bytes and
// headers: no client, no broker, no model.
namespace ferry::stream {

// How a message's value is read: one V2 inference request (JSON), or one row, as a JSON
// object or a CSV record, whose columns feed the model's inputs as in ferry batch.
enum class MessageFormat { kV2Json, kJsonRow, kCsvRow };
// "v2", "json", "csv"; INVALID_ARGUMENT naming --format otherwise.
Result<MessageFormat> ParseMessageFormat(std::string_view text);
std::string_view MessageFormatName(MessageFormat f);

// Header names ferry reads and writes. The model headers pick the model per message
// (they override --model); the source headers say which input message an output or
// dead letter came from; the error headers say why a message was dead-lettered.
inline constexpr std::string_view kModelHeader = "ferry-model";
inline constexpr std::string_view kModelVersionHeader = "ferry-model-version";
inline constexpr std::string_view kSourceTopicHeader = "ferry-source-topic";
inline constexpr std::string_view kSourcePartitionHeader = "ferry-source-partition";
inline constexpr std::string_view kSourceOffsetHeader = "ferry-source-offset";
inline constexpr std::string_view kErrorHeader = "ferry-error";
inline constexpr std::string_view kErrorCodeHeader = "ferry-error-code";
inline constexpr std::string_view kErrorStageHeader = "ferry-error-stage";  // "decode" or "inference"

struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header& o) const { return key == o.key && value == o.value; }
};
using Headers = std::vector<Header>;

// The value of the last header named `key` (Kafka allows repeats; the last one wins, as
// a later writer's override); null when there is none.
const std::string* FindHeader(const Headers& headers, std::string_view key);

// Where a message came from.
struct SourcePosition {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};

struct ModelRef {
  std::string model;
  std::string version;  // empty: the latest
  bool operator<(const ModelRef& o) const { return model != o.model ? model < o.model : version < o.version; }
  bool operator==(const ModelRef& o) const { return model == o.model && version == o.version; }
};
// The message's model: its ferry-model / ferry-model-version headers, else the defaults
// (--model / --model-version). INVALID_ARGUMENT naming the header and the flag when
// neither names a model, or when a header is empty.
Result<ModelRef> ResolveModel(const Headers& headers, const ModelRef& fallback);

// Headers of an output message: the source position and the model that answered.
Headers OutputHeaders(const SourcePosition& source, const ModelRef& model);
// Headers of a dead letter: the input's own headers, then the source position and the
// error (its message, its code name such as INVALID_ARGUMENT, and the stage).
Headers DeadLetterHeaders(const Headers& original, const SourcePosition& source, const Status& error,
                          std::string_view stage);

// Decodes a V2 inference request (the REST body's JSON form; binary tensor data has no
// place in a message). The request id, when the JSON has none, is `key`. Errors are
// INVALID_ARGUMENT naming the field, as the REST frontend's.
Result<InferRequest> DecodeV2Message(std::string_view value, std::string_view key);
// A V2 JSON response; every output in JSON (never the binary extension), BYTES elements
// as JSON strings. INVALID_ARGUMENT naming the output when a BYTES element is not UTF-8
// (a JSON string cannot hold it), as ferry batch's JSONL output.
Result<std::string> EncodeV2Response(const InferResponse& response);

// The columns of row messages: "NAME" (one value) or "NAME:WIDTH" (a JSON array of
// WIDTH values), comma-separated entries already split. INVALID_ARGUMENT naming
// --columns and the entry otherwise, or for a repeated name.
Result<std::vector<batch::Column>> ParseColumns(const std::vector<std::string>& specs);
// The columns a JSON row has when --columns is not given: one per model input, named as
// the input, as wide as one row of it.
std::vector<batch::Column> ColumnsOfInputs(const std::vector<batch::ModelInput>& inputs);

// Decodes row messages (one CSV record or one JSON object each) into the model's input
// rows, with batch::RowDecoder's plan: the mapping of columns to inputs is fixed (and
// checked) when the decoder is made, so a schema that does not fit the model is refused
// before the first message, naming the column or input.
// Thread-safety: Decode keeps scratch state; one thread at a time.
class RowMessageDecoder {
 public:
  // `format` is kJsonRow or kCsvRow.
  static Result<RowMessageDecoder> Create(MessageFormat format, std::vector<batch::Column> columns,
                                          std::vector<batch::ModelInput> inputs,
                                          const std::vector<batch::ColumnMapping>& map);
  const std::vector<batch::ModelInput>& inputs() const { return decoder_.inputs(); }
  std::string Describe() const { return decoder_.Describe(); }
  // Writes one row of input i to dst[i]; a BYTES (string) input's elements are appended
  // instead to *bytes[i] in the tensor encoding (batch::RowDecoder::Decode's rule), so
  // `bytes` may be null only when no input is BYTES. INVALID_ARGUMENT naming the column
  // (a missing key, a cell that is not a number of the input's type, a JSON value that is
  // not a string for a BYTES input, a wrong cell count).
  Status Decode(std::string_view value, char* const* dst, std::string* const* bytes = nullptr);

 private:
  RowMessageDecoder(MessageFormat format, batch::RowDecoder decoder) : format_(format), decoder_(std::move(decoder)) {}
  MessageFormat format_;
  batch::RowDecoder decoder_;
  batch::CsvRecord record_;
  std::vector<std::string> carried_;  // always empty: messages carry nothing
};

// Row `row` of a response to a request of `rows` rows, as the response to a request of
// that one row (every output's leading batch dimension becomes 1; the bytes are
// borrowed from `batched`, which the slice keeps alive). INTERNAL when an output's
// leading dimension is not `rows`.
Result<InferResponse> SliceResponse(std::shared_ptr<const InferResponse> batched, size_t row, size_t rows);

}  // namespace ferry::stream
