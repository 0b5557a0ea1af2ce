#include "stream/message_codec.h"

#include <charconv>
#include <cstring>
#include <set>

#include "batch/csv.h"
#include "batch/output_writer.h"
#include "protocol/v2_json.h"

namespace ferry::stream {

Result<MessageFormat> ParseMessageFormat(std::string_view text) {
  if (text == "v2") return MessageFormat::kV2Json;
  if (text == "json") return MessageFormat::kJsonRow;
  if (text == "csv") return MessageFormat::kCsvRow;
  return InvalidArgument("--format must be v2 (a V2 inference request per message), json (a JSON object per "
                         "message) or csv (a CSV line per message), not '" + std::string(text) + "'");
}

std::string_view MessageFormatName(MessageFormat f) {
  switch (f) {
    case MessageFormat::kV2Json: return "v2";
    case MessageFormat::kJsonRow: return "json";
    case MessageFormat::kCsvRow: return "csv";
  }
  return "?";
}

const std::string* FindHeader(const Headers& headers, std::string_view key) {
  const std::string* found = nullptr;
  for (const auto& h : headers)
    if (h.key == key) found = &h.value;
  return found;
}

Result<ModelRef> ResolveModel(const Headers& headers, const ModelRef& fallback) {
  ModelRef ref = fallback;
  if (const std::string* m = FindHeader(headers, kModelHeader)) {
    if (m->empty()) return InvalidArgument("header '" + std::string(kModelHeader) + "' is empty");
    ref.model = *m;
    ref.version.clear();
  }
  if (const std::string* v = FindHeader(headers, kModelVersionHeader)) {
    if (v->empty()) return InvalidArgument("header '" + std::string(kModelVersionHeader) + "' is empty");
    ref.version = *v;
  }
  if (ref.model.empty())
    return InvalidArgument("no model for this message: set header '" + std::string(kModelHeader) +
                           "' or start ferry stream with --model");
  return ref;
}

Headers OutputHeaders(const SourcePosition& source, const ModelRef& model) {
  Headers h{{std::string(kSourceTopicHeader), source.topic},
            {std::string(kSourcePartitionHeader), std::to_string(source.partition)},
            {std::string(kSourceOffsetHeader), std::to_string(source.offset)},
            {std::string(kModelHeader), model.model}};
  if (!model.version.empty()) h.push_back({std::string(kModelVersionHeader), model.version});
  return h;
}

Headers DeadLetterHeaders(const Headers& original, const SourcePosition& source, const Status& error,
                          std::string_view stage) {
  Headers h = original;
  h.push_back({std::string(kSourceTopicHeader), source.topic});
  h.push_back({std::string(kSourcePartitionHeader), std::to_string(source.partition)});
  h.push_back({std::string(kSourceOffsetHeader), std::to_string(source.offset)});
  h.push_back({std::string(kErrorHeader), error.message()});
  h.push_back({std::string(kErrorCodeHeader), std::string(StatusCodeName(error.code()))});
  h.push_back({std::string(kErrorStageHeader), std::string(stage)});
  return h;
}

Result<InferRequest> DecodeV2Message(std::string_view value, std::string_view key) {
  FERRY_ASSIGN_OR_RETURN(InferRequest req,
                         protocol::DecodeInferRequest(std::make_shared<const std::string>(value), std::nullopt));
  if (req.id.empty()) req.id = std::string(key);
  return req;
}

Result<std::string> EncodeV2Response(const InferResponse& response) {
  for (const auto& t : response.outputs) {
    if (t.datatype != DataType::kBytes) continue;
    const std::string_view all = t.bytes();
    size_t e = 0;
    for (size_t pos = 0; pos + 4 <= all.size(); ++e) {
      uint32_t n;
      std::memcpy(&n, all.data() + pos, 4);
      pos += 4;
      if (n > all.size() - pos) break;  // malformed: the encoder writes what is well-formed
      if (!batch::IsUtf8(all.substr(pos, n)))
        return InvalidArgument("output '" + t.name + "': element " + std::to_string(e) +
                               " is not UTF-8 text, which a JSON answer needs");
      pos += n;
    }
  }
  // A request without binary_data parameters: every output is written as JSON.
  return protocol::EncodeInferResponse(response, InferRequest{}).body;
}

Result<std::vector<batch::Column>> ParseColumns(const std::vector<std::string>& specs) {
  std::vector<batch::Column> out;
  std::set<std::string> seen;
  for (const auto& spec : specs) {
    batch::Column c;
    const size_t colon = spec.rfind(':');
    c.name = spec.substr(0, colon);
    if (colon != std::string::npos) {
      const std::string_view w = std::string_view(spec).substr(colon + 1);
      auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), c.width);
      if (ec != std::errc() || end != w.data() + w.size() || c.width == 0)
        return InvalidArgument("--columns '" + spec + "': the width after ':' must be a whole number of 1 or more");
    }
    if (c.name.empty()) return InvalidArgument("--columns '" + spec + "': the column has no name");
    if (!seen.insert(c.name).second) return InvalidArgument("--columns: column '" + c.name + "' is named twice");
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<batch::Column> ColumnsOfInputs(const std::vector<batch::ModelInput>& inputs) {
  std::vector<batch::Column> out;
  for (const auto& in : inputs) {
    size_t width = 1;
    for (int64_t d : in.dims) width *= d > 0 ? static_cast<size_t>(d) : 1;
    out.push_back({in.name, width});
  }
  return out;
}

Result<RowMessageDecoder> RowMessageDecoder::Create(MessageFormat format, std::vector<batch::Column> columns,
                                                    std::vector<batch::ModelInput> inputs,
                                                    const std::vector<batch::ColumnMapping>& map) {
  if (format == MessageFormat::kV2Json) return InvalidArgument("a row decoder needs --format json or csv");
  if (columns.empty()) return InvalidArgument("--columns: no columns");
  if (format == MessageFormat::kCsvRow)
    for (const auto& c : columns)
      if (c.width != 1)
        return InvalidArgument("--columns '" + c.name + ":" + std::to_string(c.width) +
                               "': a CSV cell holds one value; list one column per cell");
  FERRY_ASSIGN_OR_RETURN(batch::RowDecoder d,
                         batch::RowDecoder::Create(format == MessageFormat::kCsvRow ? batch::Format::kCsv
                                                                                    : batch::Format::kJsonl,
                                                   std::move(columns), std::move(inputs), {}, map));
  return RowMessageDecoder(format, std::move(d));
}

Status RowMessageDecoder::Decode(std::string_view value, char* const* dst, std::string* const* bytes) {
  batch::RawRow row;
  if (format_ == MessageFormat::kCsvRow) {
    // A trailing line break is the producer's habit, not a second record.
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.remove_suffix(1);
    if (value.empty()) return InvalidArgument("the message is empty (expected one CSV line)");
    batch::NextCsvRecord(value, 0, &record_);
    if (record_.end < value.size()) return InvalidArgument("the message holds more than one CSV line");
    row.csv = &record_;
  } else {
    row.text = value;
  }
  carried_.clear();
  Status s = decoder_.Decode(row, dst, &carried_, bytes);
  if (s.ok()) return s;
  // The row decoder names file rows ("row 0: ..."); a message is one row.
  std::string m = s.message();
  if (m.rfind("row 0", 0) == 0) {
    m.erase(0, 5);
    if (!m.empty() && (m[0] == ':' || m[0] == ',')) m.erase(0, 1);
    while (!m.empty() && m[0] == ' ') m.erase(0, 1);
  }
  return Status(s.code(), m.empty() ? s.message() : m);
}

Result<InferResponse> SliceResponse(std::shared_ptr<const InferResponse> batched, size_t row, size_t rows) {
  InferResponse out;
  out.model_name = batched->model_name;
  out.model_version = batched->model_version;
  out.parameters = batched->parameters;
  for (const auto& t : batched->outputs) {
    if (t.shape.empty() || t.shape[0] != static_cast<int64_t>(rows))
      return Internal("output '" + t.name + "': leading dimension is not the batch of " + std::to_string(rows));
    Tensor s;
    s.name = t.name;
    s.datatype = t.datatype;
    s.shape = t.shape;
    s.shape[0] = 1;
    const char* base = reinterpret_cast<const char*>(t.data());
    size_t begin = 0, end = 0;
    if (t.datatype == DataType::kBytes) {
      // Elements are (uint32 little-endian length, bytes); a row is a run of them.
      size_t per_row = 1;
      for (size_t d = 1; d < t.shape.size(); ++d) per_row *= static_cast<size_t>(t.shape[d]);
      size_t pos = 0;
      for (size_t e = 0; e < (row + 1) * per_row; ++e) {
        if (e == row * per_row) begin = pos;
        uint32_t len = 0;
        if (pos + 4 > t.byte_size()) return Internal("output '" + t.name + "': BYTES data ends early");
        std::memcpy(&len, base + pos, 4);
        pos += 4 + len;
        if (pos > t.byte_size()) return Internal("output '" + t.name + "': BYTES data ends early");
      }
      if (per_row == 0) begin = pos;
      end = pos;
    } else {
      const size_t row_bytes = t.byte_size() / rows;
      begin = row * row_bytes;
      end = begin + row_bytes;
    }
    s.Borrow(base + begin, end - begin, batched);
    out.outputs.push_back(std::move(s));
  }
  return out;
}

}  // namespace ferry::stream
