#include "batch/output_writer.h"

#include <charconv>
#include <cmath>
#include <algorithm>
#include <cstring>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <rapidjson/document.h>

#include "batch/csv.h"
#include "batch/npy.h"
#include "core/float16.h"

namespace ferry::batch {
namespace {

template <typename T>
T Load(const std::byte* data, size_t i) {
  T v;
  std::memcpy(&v, data + i * sizeof(T), sizeof(T));
  return v;
}

template <typename T>
void AppendNumber(T v, std::string* out) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(p - buf));
}

template <typename F>
void AppendFloat(F v, bool json, std::string* out) {
  if (std::isnan(v)) {
    out->append(json ? "NaN" : "nan");
  } else if (std::isinf(v)) {
    out->append(v < 0 ? (json ? "-Infinity" : "-inf") : (json ? "Infinity" : "inf"));
  } else {
    AppendNumber(v, out);
  }
}

void AppendJsonString(std::string_view s, std::string* out) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  out->append(sb.GetString(), sb.GetSize());
}

}  // namespace

bool IsUtf8(std::string_view s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>, rapidjson::CrtAllocator,
                    rapidjson::kWriteValidateEncodingFlag>
      w(sb);
  return w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void AppendElement(DataType type, const std::byte* data, size_t i, bool json, std::string* out) {
  switch (type) {
    case DataType::kBool: out->append(Load<uint8_t>(data, i) ? "true" : "false"); return;
    case DataType::kUint8: AppendNumber(Load<uint8_t>(data, i), out); return;
    case DataType::kUint16: AppendNumber(Load<uint16_t>(data, i), out); return;
    case DataType::kUint32: AppendNumber(Load<uint32_t>(data, i), out); return;
    case DataType::kUint64: AppendNumber(Load<uint64_t>(data, i), out); return;
    case DataType::kInt8: AppendNumber(Load<int8_t>(data, i), out); return;
    case DataType::kInt16: AppendNumber(Load<int16_t>(data, i), out); return;
    case DataType::kInt32: AppendNumber(Load<int32_t>(data, i), out); return;
    case DataType::kInt64: AppendNumber(Load<int64_t>(data, i), out); return;
    case DataType::kFp16: AppendFloat(HalfToFloat(Load<uint16_t>(data, i)), json, out); return;
    case DataType::kBf16: AppendFloat(Bf16ToFloat(Load<uint16_t>(data, i)), json, out); return;
    case DataType::kFp32: AppendFloat(Load<float>(data, i), json, out); return;
    case DataType::kFp64: AppendFloat(Load<double>(data, i), json, out); return;
    default: out->append(json ? "null" : ""); return;
  }
}

Result<std::unique_ptr<OutputWriter>> OutputWriter::Create(Format format, std::vector<std::string> carry_names,
                                                           bool carried_is_json, std::vector<ModelOutput> outputs) {
  std::unique_ptr<OutputWriter> w(new OutputWriter());
  w->format_ = format;
  if (outputs.empty()) return InvalidArgument("no output to write");
  for (auto& o : outputs) {
    if (o.datatype == DataType::kBytes && format == Format::kNpy)
      return InvalidArgument("output '" + o.name + "': datatype BYTES (strings) cannot go into a .npy output; "
                             "write .csv, .jsonl or .parquet, or leave it out with --outputs");
    if (o.datatype != DataType::kBytes && DataTypeSize(o.datatype) == 0)
      return InvalidArgument("output '" + o.name + "': datatype " + std::string(DataTypeName(o.datatype)) +
                             " cannot be written by ferry batch; leave it out with --outputs");
    auto n = ElementCount(o.dims);
    o.width = n ? static_cast<size_t>(*n) : 0;
    if (o.width == 0 && format != Format::kJsonl)
      return InvalidArgument("output '" + o.name + "': shape " + ShapeToString(o.dims) +
                             " has a variable dimension; only a .jsonl output can hold it");
  }
  if (format == Format::kNpy) {
    if (outputs.size() != 1) {
      std::string names;
      for (const auto& o : outputs) names += (names.empty() ? "" : ", ") + o.name;
      return InvalidArgument("a .npy output holds one output and the model has " + std::to_string(outputs.size()) + " (" +
                             names + "); choose one with --outputs NAME");
    }
    if (!carry_names.empty()) return InvalidArgument("--carry: a .npy output has no columns to carry values into");
  }
  for (const auto& c : carry_names)
    for (const auto& o : outputs) {
      bool clash = c == o.name;
      if ((format == Format::kCsv || format == Format::kParquet) && o.width > 1 && c.rfind(o.name + "_", 0) == 0) {
        const std::string rest = c.substr(o.name.size() + 1);
        clash = !rest.empty() && rest.find_first_not_of("0123456789") == std::string::npos &&
                std::stoull(rest) < o.width;
      }
      if (clash) return InvalidArgument("--carry: column '" + c + "' has the name of an output column of '" + o.name + "'");
    }
  w->carry_names_ = std::move(carry_names);
  w->carried_is_json_ = carried_is_json;
  w->outputs_ = std::move(outputs);
  return w;
}

std::string OutputWriter::Header(uint64_t rows) const {
  switch (format_) {
    case Format::kCsv: {
      std::string h;
      bool first = true;
      auto add = [&](std::string_view name) {
        if (!first) h += ',';
        first = false;
        AppendCsvCell(name, &h);
      };
      for (const auto& c : carry_names_) add(c);
      for (const auto& [name, output] : OutputColumns()) add(name);
      h += '\n';
      return h;
    }
    case Format::kJsonl: return {};
    case Format::kParquet: return "PAR1";
    case Format::kNpy: {
      const ModelOutput& o = outputs_[0];
      Shape shape{static_cast<int64_t>(rows)};
      shape.insert(shape.end(), o.dims.begin(), o.dims.end());
      // 128 bytes holds any row count with room to spare for a few dimensions.
      auto h = FormatNpyHeader(o.datatype, shape, 128 + 64 * (o.dims.size() / 4));
      return h.ok() ? *h : std::string();
    }
  }
  return {};
}

std::vector<std::pair<std::string, size_t>> OutputWriter::OutputColumns() const {
  std::vector<std::pair<std::string, size_t>> cols;
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const ModelOutput& o = outputs_[i];
    if (o.width == 1) cols.emplace_back(o.name, i);
    else
      for (size_t e = 0; e < o.width; ++e) cols.emplace_back(o.name + "_" + std::to_string(e), i);
  }
  return cols;
}

std::string CarriedText(std::string_view v, bool is_json) {
  if (is_json && v.size() >= 2 && v.front() == '"') {
    rapidjson::Document d;
    d.Parse(v.data(), v.size());
    if (d.IsString()) return std::string(d.GetString(), d.GetStringLength());
  }
  return std::string(v);
}

Result<CheckedOutputs> OutputWriter::CheckTensors(const std::vector<const Tensor*>& outs, size_t batch) const {
  CheckedOutputs checked;
  std::vector<size_t>& widths = checked.widths;
  widths.resize(outputs_.size());
  checked.strings.resize(outputs_.size());
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const ModelOutput& o = outputs_[i];
    const Tensor& t = *outs[i];
    if (t.datatype != o.datatype)
      return Internal("output '" + o.name + "': the model answered " + std::string(DataTypeName(t.datatype)) +
                      ", its config declares " + std::string(DataTypeName(o.datatype)));
    size_t elems = 0;
    if (o.datatype == DataType::kBytes) {
      std::vector<std::string_view>& strings = checked.strings[i];
      const std::string_view all = t.bytes();
      for (size_t at = 0; at < all.size();) {
        uint32_t len = 0;
        if (all.size() - at < 4 || (std::memcpy(&len, all.data() + at, 4), all.size() - at - 4 < len))
          return Internal("output '" + o.name + "': a BYTES element runs past the tensor's end");
        strings.push_back(all.substr(at + 4, len));
        at += 4 + len;
      }
      if (format_ == Format::kJsonl || format_ == Format::kParquet)
        for (size_t e = 0; e < strings.size(); ++e)
          if (!IsUtf8(strings[e]))
            return InvalidArgument("output '" + o.name + "': element " + std::to_string(e % std::max<size_t>(1, o.width)) +
                                   " is not UTF-8 text, which " + std::string(FormatName(format_)) +
                                   " needs (a .csv output takes any bytes)");
      elems = strings.size();
    } else {
      elems = t.byte_size() / DataTypeSize(o.datatype);
    }
    if (batch == 0 || elems % batch != 0 || (o.width != 0 && elems / batch != o.width))
      return Internal("output '" + o.name + "': " + std::to_string(elems) + " elements for " + std::to_string(batch) +
                      " rows, expected " + std::to_string(o.width) + " per row");
    widths[i] = elems / batch;
  }
  return checked;
}

Status OutputWriter::AppendRow(const std::string* carried, const std::vector<const Tensor*>& outs, size_t r,
                               size_t batch, std::string* out) const {
  if (format_ == Format::kNpy) {
    const ModelOutput& o = outputs_[0];
    const size_t row_bytes = o.width * DataTypeSize(o.datatype);
    if (outs[0]->byte_size() != row_bytes * batch)
      return Internal("output '" + o.name + "': " + std::to_string(outs[0]->byte_size()) + " bytes for " +
                      std::to_string(batch) + " rows, expected " + std::to_string(row_bytes) + " per row");
    out->append(reinterpret_cast<const char*>(outs[0]->data()) + r * row_bytes, row_bytes);
    return Status::Ok();
  }
  if (format_ == Format::kParquet) return Internal("Parquet rows are written by ParquetOutput");
  // Check every tensor before writing, so a bad one leaves `out` as it was.
  FERRY_ASSIGN_OR_RETURN(CheckedOutputs checked, CheckTensors(outs, batch));
  AppendTextRow(carried, outs, checked, r, out);
  return Status::Ok();
}

Status OutputWriter::AppendRows(const std::string* carried, const std::vector<const Tensor*>& outs, size_t batch,
                                std::string* out) const {
  if (format_ == Format::kNpy || format_ == Format::kParquet) {
    const size_t before = out->size();
    for (size_t r = 0; r < batch; ++r) {
      Status s = AppendRow(carried + r * carry_names_.size(), outs, r, batch, out);
      if (!s.ok()) {
        out->resize(before);
        return s;
      }
    }
    return Status::Ok();
  }
  FERRY_ASSIGN_OR_RETURN(CheckedOutputs checked, CheckTensors(outs, batch));
  for (size_t r = 0; r < batch; ++r) AppendTextRow(carried + r * carry_names_.size(), outs, checked, r, out);
  return Status::Ok();
}

void OutputWriter::AppendTextRow(const std::string* carried, const std::vector<const Tensor*>& outs,
                                 const CheckedOutputs& checked, size_t r, std::string* out) const {
  const bool json = format_ == Format::kJsonl;
  const std::vector<size_t>& widths = checked.widths;
  if (format_ == Format::kCsv) {
    bool first = true;
    for (size_t c = 0; c < carry_names_.size(); ++c) {
      if (!first) *out += ',';
      first = false;
      if (carried_is_json_) AppendCsvCell(CarriedText(carried[c], true), out);
      else AppendCsvCell(carried[c], out);
    }
    for (size_t i = 0; i < outputs_.size(); ++i)
      for (size_t e = 0; e < widths[i]; ++e) {
        if (!first) *out += ',';
        first = false;
        if (outputs_[i].datatype == DataType::kBytes) AppendCsvCell(checked.strings[i][r * widths[i] + e], out);
        else AppendElement(outputs_[i].datatype, outs[i]->data(), r * widths[i] + e, false, out);
      }
    *out += '\n';
    return;
  }
  *out += '{';
  bool first = true;
  for (size_t c = 0; c < carry_names_.size(); ++c) {
    if (!first) *out += ',';
    first = false;
    AppendJsonString(carry_names_[c], out);
    *out += ':';
    if (carried_is_json_) *out += carried[c];
    else AppendJsonString(carried[c], out);
  }
  for (size_t i = 0; i < outputs_.size(); ++i) {
    if (!first) *out += ',';
    first = false;
    AppendJsonString(outputs_[i].name, out);
    *out += ':';
    const bool scalar = outputs_[i].width == 1;
    if (!scalar) *out += '[';
    for (size_t e = 0; e < widths[i]; ++e) {
      if (e) *out += ',';
      if (outputs_[i].datatype == DataType::kBytes) AppendJsonString(checked.strings[i][r * widths[i] + e], out);
      else AppendElement(outputs_[i].datatype, outs[i]->data(), r * widths[i] + e, json, out);
    }
    if (!scalar) *out += ']';
  }
  out->append("}\n");
}

}  // namespace ferry::batch
