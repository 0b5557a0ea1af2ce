#include "batch/row_decoder.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include <emmintrin.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "batch/byte_scan.h"
#include "batch/decimal.h"
#include "batch/output_writer.h"
#include "core/float16.h"

namespace ferry::batch {
namespace {

template <typename T>
void Put(T v, char* dst) {
  std::memcpy(dst, &v, sizeof(T));
}

template <typename T>
bool PutIntegral(double d, char* dst) {
  if (!(d == std::floor(d)) || d < static_cast<double>(std::numeric_limits<T>::min()) ||
      d > static_cast<double>(std::numeric_limits<T>::max()))
    return false;
  Put(static_cast<T>(d), dst);
  return true;
}

template <typename T>
bool PutInt(int64_t v, char* dst) {
  if constexpr (std::is_unsigned_v<T>) {
    if (v < 0 || static_cast<uint64_t>(v) > std::numeric_limits<T>::max()) return false;
  } else {
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) return false;
  }
  Put(static_cast<T>(v), dst);
  return true;
}

// Stores a number given as an int64 (exact) into an element of `type`.
bool PutInt64(DataType type, int64_t v, char* dst) {
  switch (type) {
    case DataType::kBool:
      if (v != 0 && v != 1) return false;
      Put<uint8_t>(static_cast<uint8_t>(v), dst);
      return true;
    case DataType::kUint8: return PutInt<uint8_t>(v, dst);
    case DataType::kUint16: return PutInt<uint16_t>(v, dst);
    case DataType::kUint32: return PutInt<uint32_t>(v, dst);
    case DataType::kUint64: return PutInt<uint64_t>(v, dst);
    case DataType::kInt8: return PutInt<int8_t>(v, dst);
    case DataType::kInt16: return PutInt<int16_t>(v, dst);
    case DataType::kInt32: return PutInt<int32_t>(v, dst);
    case DataType::kInt64: return PutInt<int64_t>(v, dst);
    case DataType::kFp16: Put(DoubleToHalf(static_cast<double>(v)), dst); return true;
    case DataType::kBf16: Put(DoubleToBf16(static_cast<double>(v)), dst); return true;
    case DataType::kFp32: Put(static_cast<float>(v), dst); return true;
    case DataType::kFp64: Put(static_cast<double>(v), dst); return true;
    default: return false;
  }
}

bool PutDouble(DataType type, double d, char* dst) {
  switch (type) {
    case DataType::kBool:
      if (d != 0 && d != 1) return false;
      Put<uint8_t>(d != 0, dst);
      return true;
    case DataType::kUint8: return PutIntegral<uint8_t>(d, dst);
    case DataType::kUint16: return PutIntegral<uint16_t>(d, dst);
    case DataType::kUint32: return PutIntegral<uint32_t>(d, dst);
    case DataType::kUint64: return PutIntegral<uint64_t>(d, dst);
    case DataType::kInt8: return PutIntegral<int8_t>(d, dst);
    case DataType::kInt16: return PutIntegral<int16_t>(d, dst);
    case DataType::kInt32: return PutIntegral<int32_t>(d, dst);
    case DataType::kInt64: return PutIntegral<int64_t>(d, dst);
    case DataType::kFp16: Put(DoubleToHalf(d), dst); return true;
    case DataType::kBf16: Put(DoubleToBf16(d), dst); return true;
    case DataType::kFp32: Put(static_cast<float>(d), dst); return true;
    case DataType::kFp64: Put(d, dst); return true;
    default: return false;
  }
}

// Reads element `i` of a .npy row of `type` as a double or int64 and stores it.
bool ConvertNpy(DataType from, const char* src, DataType to, char* dst) {
  auto get = [src](auto v) {
    std::memcpy(&v, src, sizeof(v));
    return v;
  };
  switch (from) {
    case DataType::kBool: return PutInt64(to, get(uint8_t{}) != 0, dst);
    case DataType::kUint8: return PutInt64(to, get(uint8_t{}), dst);
    case DataType::kUint16: return PutInt64(to, get(uint16_t{}), dst);
    case DataType::kUint32: return PutInt64(to, get(uint32_t{}), dst);
    case DataType::kUint64: {
      uint64_t v = get(uint64_t{});
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return PutDouble(to, static_cast<double>(v), dst);
      return PutInt64(to, static_cast<int64_t>(v), dst);
    }
    case DataType::kInt8: return PutInt64(to, get(int8_t{}), dst);
    case DataType::kInt16: return PutInt64(to, get(int16_t{}), dst);
    case DataType::kInt32: return PutInt64(to, get(int32_t{}), dst);
    case DataType::kInt64: return PutInt64(to, get(int64_t{}), dst);
    case DataType::kFp16: return PutDouble(to, HalfToFloat(get(uint16_t{})), dst);
    case DataType::kFp32: return PutDouble(to, get(float{}), dst);
    case DataType::kFp64: return PutDouble(to, get(double{}), dst);
    default: return false;
  }
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string Shown(std::string_view cell) {
  if (cell.size() > 40) return Quote(std::string(cell.substr(0, 40)) + "...");
  return Quote(cell);
}

std::string TypeWord(DataType t) {
  if (t == DataType::kBool) return "a boolean (true, false, 1, 0)";
  if (t == DataType::kFp16 || t == DataType::kBf16 || t == DataType::kFp32 || t == DataType::kFp64) return "a number";
  return "an integer in the range of " + std::string(DataTypeName(t));
}

std::string RowName(const RawRow& row) {
  std::string s = "row " + std::to_string(row.index);
  if (row.line > 0) s += " (line " + std::to_string(row.line) + ")";
  return s;
}

}  // namespace

Result<ColumnMapping> ParseColumnMapping(const std::string& entry) {
  const size_t colon = entry.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == entry.size())
    return InvalidArgument("--map entries are COLUMN:INPUT, not '" + entry + "'");
  return ColumnMapping{entry.substr(0, colon), entry.substr(colon + 1)};
}

bool ParseElement(DataType type, std::string_view text, char* dst) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  const char* b = text.data();
  const char* e = b + text.size();
  switch (type) {
    case DataType::kFp32: {
      float f;
      if (ParseDecimal(b, e, &f) == e) {
        Put(f, dst);
        return true;
      }
      auto [p, ec] = std::from_chars(b, e, f);
      if (ec != std::errc() || p != e) return false;
      Put(f, dst);
      return true;
    }
    case DataType::kFp64:
    case DataType::kFp16:
    case DataType::kBf16: {
      double d;
      auto [p, ec] = std::from_chars(b, e, d);
      if (ec != std::errc() || p != e) return false;
      return PutDouble(type, d, dst);
    }
    case DataType::kBool:
      if (text == "true" || text == "True" || text == "TRUE" || text == "1") return PutInt64(type, 1, dst);
      if (text == "false" || text == "False" || text == "FALSE" || text == "0") return PutInt64(type, 0, dst);
      return false;
    case DataType::kUint64: {
      uint64_t u;
      auto [p, ec] = std::from_chars(b, e, u);
      if (ec == std::errc() && p == e) {
        Put(u, dst);
        return true;
      }
      break;
    }
    default: {
      int64_t v;
      auto [p, ec] = std::from_chars(b, e, v);
      if (ec == std::errc() && p == e) return PutInt64(type, v, dst);
      break;
    }
  }
  // An integer column written as "3.0" is still an integer.
  double d;
  auto [p, ec] = std::from_chars(b, e, d);
  if (ec != std::errc() || p != e) return false;
  return PutDouble(type, d, dst);
}

Result<RowDecoder> RowDecoder::Create(const InputReader& reader, std::vector<ModelInput> inputs,
                                      const std::vector<std::string>& carry, const std::vector<ColumnMapping>& map) {
  RowDecoder d;
  d.npy_type_ = reader.npy_datatype();
  return Plan(std::move(d), reader.format(), reader.columns(), std::move(inputs), carry, map);
}

Result<RowDecoder> RowDecoder::Create(Format format, std::vector<Column> columns, std::vector<ModelInput> inputs,
                                      const std::vector<std::string>& carry, const std::vector<ColumnMapping>& map) {
  if (format == Format::kNpy) return InvalidArgument("rows one by one are CSV or JSON, not .npy");
  return Plan(RowDecoder(), format, std::move(columns), std::move(inputs), carry, map);
}

Result<RowDecoder> RowDecoder::Plan(RowDecoder d, Format format, std::vector<Column> columns,
                                    std::vector<ModelInput> inputs, const std::vector<std::string>& carry,
                                    const std::vector<ColumnMapping>& map) {
  d.format_ = format;
  d.columns_ = std::move(columns);
  d.targets_.assign(d.columns_.size(), Target{});
  auto find = [&d](std::string_view name) -> int {
    for (size_t i = 0; i < d.columns_.size(); ++i)
      if (d.columns_[i].name == name) return static_cast<int>(i);
    return -1;
  };
  auto column_list = [&d] {
    std::string s;
    for (size_t i = 0; i < d.columns_.size() && i < 12; ++i) s += (i ? ", " : "") + Quote(d.columns_[i].name);
    if (d.columns_.size() > 12) s += ", ... (" + std::to_string(d.columns_.size()) + " in all)";
    return s;
  };
  std::vector<bool> carried(d.columns_.size(), false);
  for (const auto& c : carry) {
    if (d.format_ == Format::kNpy) return InvalidArgument("--carry: a .npy input has no named columns to carry");
    int i = find(c);
    if (i < 0) return InvalidArgument("--carry: no column '" + c + "' in the input (columns: " + column_list() + ")");
    carried[static_cast<size_t>(i)] = true;
    d.carry_columns_.push_back(static_cast<size_t>(i));
    d.carry_names_.push_back(c);
  }
  for (const auto& m : map) {
    bool known = false;
    for (const auto& in : inputs) known |= in.name == m.tensor;
    if (!known) return InvalidArgument("--map " + m.column + ":" + m.tensor + ": the model has no input '" + m.tensor + "'");
    if (find(m.column) < 0)
      return InvalidArgument("--map " + m.column + ":" + m.tensor + ": no column '" + m.column +
                             "' in the input (columns: " + column_list() + ")");
  }
  auto assign = [&d](size_t col, int input, size_t offset) -> Status {
    if (d.targets_[col].input >= 0)
      return InvalidArgument("column '" + d.columns_[col].name + "' would feed both input '" +
                             d.inputs_[static_cast<size_t>(d.targets_[col].input)].name + "' and input '" +
                             d.inputs_[static_cast<size_t>(input)].name + "'");
    d.targets_[col] = Target{input, offset, d.columns_[col].width};
    return Status::Ok();
  };
  d.inputs_ = std::move(inputs);
  for (size_t k = 0; k < d.inputs_.size(); ++k) {
    ModelInput& in = d.inputs_[k];
    const int ki = static_cast<int>(k);
    if (in.datatype == DataType::kBytes && d.format_ == Format::kNpy)
      return InvalidArgument("input '" + in.name + "': datatype BYTES (strings) cannot be fed from a .npy file");
    if (in.datatype != DataType::kBytes && DataTypeSize(in.datatype) == 0)
      return InvalidArgument("input '" + in.name + "': datatype " + std::string(DataTypeName(in.datatype)) +
                             " cannot be fed from files");
    auto count = ElementCount(in.dims);
    if (!count) return InvalidArgument("input '" + in.name + "': shape " + ShapeToString(in.dims) +
                                       " has a variable dimension; ferry batch needs a fixed shape per row");
    in.width = static_cast<size_t>(*count);
    auto width_error = [&in](const std::string& what, size_t got) {
      return InvalidArgument("input '" + in.name + "' needs " + std::to_string(in.width) + " values per row (shape " +
                             ShapeToString(in.dims) + "); " + what + " hold" + (got == 1 ? "s " : " ") +
                             std::to_string(got));
    };
    std::vector<size_t> cols;
    std::string how;
    for (const auto& m : map)
      if (m.tensor == in.name) cols.push_back(static_cast<size_t>(find(m.column)));
    if (!cols.empty()) {
      how = "--map";
    } else if (int c = find(in.name); c >= 0 && !carried[static_cast<size_t>(c)]) {
      cols.push_back(static_cast<size_t>(c));
      how = "column '" + in.name + "'";
    } else if (in.width > 1 && find(in.name + "_0") >= 0) {
      for (size_t e = 0; e < in.width; ++e) {
        int c = find(in.name + "_" + std::to_string(e));
        if (c < 0) return InvalidArgument("input '" + in.name + "': column '" + in.name + "_0' is there but '" + in.name +
                                          "_" + std::to_string(e) + "' is missing (" + std::to_string(in.width) +
                                          " columns " + in.name + "_0.." + in.name + "_" + std::to_string(in.width - 1) +
                                          " are needed)");
        cols.push_back(static_cast<size_t>(c));
      }
      how = "columns '" + in.name + "_0'..'" + in.name + "_" + std::to_string(in.width - 1) + "'";
    } else if (d.inputs_.size() == 1 && map.empty()) {
      for (size_t c = 0; c < d.columns_.size(); ++c)
        if (!carried[c]) cols.push_back(c);
      how = d.format_ == Format::kNpy ? "the .npy rows" : "the input's columns other than --carry ones";
      if (cols.empty()) return InvalidArgument("input '" + in.name + "': the input has no column left to feed it");
    } else {
      return InvalidArgument("input '" + in.name + "': no column feeds it; expected a column '" + in.name + "'" +
                             (in.width > 1 ? ", columns '" + in.name + "_0'..'" + in.name + "_" +
                                                 std::to_string(in.width - 1) + "'"
                                           : std::string()) +
                             " or --map COLUMN:" + in.name + " (columns: " + column_list() + ")");
    }
    size_t offset = 0;
    for (size_t c : cols) {
      FERRY_RETURN_IF_ERROR(assign(c, ki, offset));
      offset += d.columns_[c].width;
    }
    if (offset != in.width) {
      std::string names;
      if (d.format_ != Format::kNpy)
        for (size_t i = 0; i < cols.size() && i < 12; ++i) names += (i ? ", " : " (") + d.columns_[cols[i]].name;
      if (!names.empty()) names += cols.size() > 12 ? ", ...)" : ")";
      return width_error(how + names, offset);
    }
  }
  for (size_t c = 0; c < d.columns_.size(); ++c) {
    Target& t = d.targets_[c];
    if (t.input < 0) continue;
    d.fed_columns_.push_back(c);
    t.datatype = d.inputs_[static_cast<size_t>(t.input)].datatype;
    t.element_size = DataTypeSize(t.datatype);
    t.byte_offset = t.offset * t.element_size;
    // A Parquet column whose type holds no number would fail every row: refused now.
    const Column& col = d.columns_[c];
    const ModelInput& in = d.inputs_[static_cast<size_t>(t.input)];
    if (in.datatype == DataType::kBytes) continue;
    if (col.kind == ValueKind::kOther || (col.kind == ValueKind::kBool && in.datatype != DataType::kBool))
      return InvalidArgument("column '" + col.name + "' is " + col.type + " in the Parquet file and cannot feed input '" +
                             in.name + "' (" + std::string(DataTypeName(in.datatype)) + "): " +
                             (col.kind == ValueKind::kBool ? "a boolean column feeds only a BOOL input"
                                                           : "it needs an integer, floating-point, decimal or string column"));
  }
  d.row_bytes_.clear();
  for (const ModelInput& in : d.inputs_) d.row_bytes_.push_back(in.width * DataTypeSize(in.datatype));
  d.typed_columns_ = d.TypedColumns();
  // Four fed columns in a row that fill four adjacent 4-byte elements of one input.
  d.quads_.assign(d.fed_columns_.size(), 0);
  for (size_t j = 0; j + 4 <= d.fed_columns_.size(); ++j) {
    const Target& t = d.targets_[d.fed_columns_[j]];
    bool quad = t.element_size == 4;
    for (size_t q = 1; q < 4 && quad; ++q) {
      const Target& u = d.targets_[d.fed_columns_[j + q]];
      quad = u.input == t.input && u.byte_offset == t.byte_offset + 4 * q;
    }
    d.quads_[j] = quad;
  }
  d.bytes_cells_.resize(d.inputs_.size());
  for (size_t k = 0; k < d.inputs_.size(); ++k)
    if (d.inputs_[k].datatype == DataType::kBytes) {
      d.bytes_inputs_.push_back(k);
      d.bytes_cells_[k].resize(d.inputs_[k].width);
    }
  return d;
}

void RowDecoder::AppendBytes(std::string* const* bytes) const {
  for (size_t k : bytes_inputs_)
    for (std::string_view e : bytes_cells_[k]) {
      const auto n = static_cast<uint32_t>(e.size());
      const char len[4] = {static_cast<char>(n), static_cast<char>(n >> 8), static_cast<char>(n >> 16),
                           static_cast<char>(n >> 24)};
      bytes[k]->append(len, 4);
      bytes[k]->append(e);
    }
}

bool RowDecoder::DecodeCsvLine(std::string_view line, char* const* dst, std::vector<std::string>* carried,
                               std::string* const* bytes) {
  const char* const begin = line.data();
  const char* const end = begin + line.size();
  const size_t ncol = columns_.size();
  if (ncol == 0) return false;
  // All the cell ends first (the commas, then the line's end), so that each cell is
  // parsed on its own, not from where the parse of the one before stopped.
  cell_ends_.resize(ncol + 64);
  if (FindByte(begin, end, ',', cell_ends_.data(), ncol - 1) != ncol - 1) return false;  // too few or too many cells
  cell_ends_[ncol - 1] = end;
  line_cells_.resize(ncol);
  for (size_t c = 0; c < ncol; ++c) {
    const char* const p = c == 0 ? begin : cell_ends_[c - 1] + 1;
    const char* const stop = cell_ends_[c];
    line_cells_[c] = std::string_view(p, static_cast<size_t>(stop - p));
    const Target& t = targets_[c];
    if (t.input < 0) continue;
    char* out = dst[t.input] + t.byte_offset;
    // The short paths read 17 bytes from p (past the cell: they stop at the ','); the
    // SSE2 one also the 16 before p: in all cells but the line's first.
    auto fast = [&](auto v) {
      const char* q = end - p < 17 ? nullptr : p - begin >= 16 ? ParseShortDecimalSse2(p, &v) : ParseShortDecimal(p, &v);
      if (q == nullptr) q = ParseDecimal(p, stop, &v);
      if (q != stop) return false;
      std::memcpy(out, &v, sizeof v);
      return true;
    };
    if (t.datatype == DataType::kFp32 ? fast(float{}) : t.datatype == DataType::kFp64 && fast(double{})) continue;
    // Anything else, and what the fast paths leave (spaces, '+', "inf", a bad cell).
    if (t.datatype == DataType::kBytes)
      bytes_cells_[static_cast<size_t>(t.input)][t.offset] = line_cells_[c];
    else if (!ParseElement(t.datatype, line_cells_[c], out))
      return false;
  }
  for (size_t c : carry_columns_) carried->emplace_back(line_cells_[c]);
  AppendBytes(bytes);
  return true;
}

std::vector<uint8_t> RowDecoder::TypedColumns() const {
  std::vector<uint8_t> typed(columns_.size(), 0);
  for (size_t c : fed_columns_)
    typed[c] = inputs_[static_cast<size_t>(targets_[c].input)].datatype != DataType::kBytes;
  for (size_t c : carry_columns_) typed[c] = 0;
  return typed;
}

namespace {

// Copies `count` elements of N bytes from consecutive `src` to every `stride`-th byte of dst.
template <size_t N>
void CopyStrided(const std::byte* src, char* dst, size_t stride, size_t count) {
  for (size_t k = 0; k < count; ++k, src += N, dst += stride) std::memcpy(dst, src, N);
}

void CopyStrided(size_t n, const std::byte* src, char* dst, size_t stride, size_t count) {
  switch (n) {
    case 1: return CopyStrided<1>(src, dst, stride, count);
    case 2: return CopyStrided<2>(src, dst, stride, count);
    case 4: return CopyStrided<4>(src, dst, stride, count);
    case 8: return CopyStrided<8>(src, dst, stride, count);
    default:
      for (size_t k = 0; k < count; ++k, src += n, dst += stride) std::memcpy(dst, src, n);
  }
}

// Copies `count` rows of four 4-byte columns (s[0..3], consecutive elements) into four
// adjacent elements of every `stride`-th byte of dst: four rows at a time with a 4x4
// transpose (integer unpacks, so the bits move as they are: a NaN stays the same NaN).
void CopyQuad(const std::byte* const s[4], char* dst, size_t stride, size_t count) {
  size_t k = 0;
  for (; k + 4 <= count; k += 4, dst += 4 * stride) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s[0] + 4 * k));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s[1] + 4 * k));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s[2] + 4 * k));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s[3] + 4 * k));
    const __m128i ab01 = _mm_unpacklo_epi32(a, b), cd01 = _mm_unpacklo_epi32(c, d);
    const __m128i ab23 = _mm_unpackhi_epi32(a, b), cd23 = _mm_unpackhi_epi32(c, d);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_unpacklo_epi64(ab01, cd01));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + stride), _mm_unpackhi_epi64(ab01, cd01));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * stride), _mm_unpacklo_epi64(ab23, cd23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 3 * stride), _mm_unpackhi_epi64(ab23, cd23));
  }
  for (; k < count; ++k, dst += stride)
    for (size_t j = 0; j < 4; ++j) std::memcpy(dst + 4 * j, s[j] + 4 * k, 4);
}

}  // namespace

void RowDecoder::DecodeRun(InputReader& reader, const ParquetRun& run, char* const* dst,
                           std::vector<std::string>* carried, std::vector<uint64_t>* decoded,
                           std::vector<std::pair<uint64_t, std::string>>* failed, std::string* const* bytes) {
  const size_t n = run.rows;
  const size_t ninputs = inputs_.size();
  run_dst_.resize(ninputs);
  bool by_columns = bytes_inputs_.empty();
  for (size_t c : fed_columns_)
    by_columns = by_columns && typed_columns_[c] && run.columns[c].values.data != nullptr;
  if (!by_columns) {
    for (size_t k = 0, w = 0; k < n; ++k) {
      reader.RunRow(run, k, &run_row_);
      for (size_t i = 0; i < ninputs; ++i) run_dst_[i] = dst[i] + w * row_bytes_[i];
      Status s = Decode(run_row_, run_dst_.data(), carried, bytes);
      if (s.ok()) {
        decoded->push_back(run_row_.index);
        ++w;
      } else {
        failed->emplace_back(run_row_.index, s.message());
      }
    }
    return;
  }
  // The rows with a null in a fed column first: they take no place in dst.
  run_bad_.assign(n, 0);
  bool nulls = false;
  for (size_t c : fed_columns_) {
    const ParquetRun::Column& col = run.columns[c];
    if (col.validity == nullptr) continue;
    for (size_t k = 0; k < n; ++k)
      if (col.IsNull(k)) {
        run_bad_[k] = 1;
        nulls = true;
      }
  }
  if (nulls) {
    run_pos_.resize(n);
    for (size_t k = 0, w = 0; k < n; ++k) {
      run_pos_[k] = w;
      w += run_bad_[k] == 0;
    }
  }
  // Then each fed column into its place in every row, a block of rows at a time so that
  // the rows written stay in cache while their columns come in.
  constexpr size_t kBlock = 64;
  bool unconverted = false;
  for (size_t k0 = 0; k0 < n; k0 += kBlock) {
    const size_t k1 = std::min(n, k0 + kBlock);
    for (size_t j = 0; j < fed_columns_.size(); ++j) {
      const size_t c = fed_columns_[j];
      const Target& t = targets_[c];
      const TypedCell& from = run.columns[c].values;
      const size_t from_size = DataTypeSize(from.type);
      const size_t stride = row_bytes_[static_cast<size_t>(t.input)];
      char* const base = dst[t.input] + t.byte_offset;
      if (!nulls && quads_[j]) {
        const std::byte* s4[4];
        bool same = true;
        for (size_t q = 0; q < 4; ++q) {
          const TypedCell& f = run.columns[fed_columns_[j + q]].values;
          same = same && f.type == t.datatype;
          s4[q] = f.data + k0 * 4;
        }
        if (same) {
          CopyQuad(s4, base + k0 * stride, stride, k1 - k0);
          j += 3;
          continue;
        }
      }
      if (from.type == t.datatype && !nulls) {
        CopyStrided(t.element_size, from.data + k0 * from_size, base + k0 * stride, stride, k1 - k0);
        continue;
      }
      for (size_t k = k0; k < k1; ++k) {
        if (run_bad_[k] == 1) continue;
        char* out = base + (nulls ? run_pos_[k] : k) * stride;
        const std::byte* in = from.data + k * from_size;
        if (from.type == t.datatype) {
          std::memcpy(out, in, t.element_size);
        } else if (from.type == DataType::kFp64 && t.datatype == DataType::kFp32) {  // pandas' default floats
          double v;
          std::memcpy(&v, in, 8);
          Put(static_cast<float>(v), out);
        } else if (!ConvertNpy(from.type, reinterpret_cast<const char*>(in), t.datatype, out)) {
          run_bad_[k] = 2;
          unconverted = true;
        }
      }
    }
  }
  // Last, in row order: what each row gives, and the failed rows' messages from Decode.
  const bool compact = nulls || unconverted;
  for (size_t k = 0, w = 0; k < n; ++k) {
    const uint64_t index = run.first + k;
    if (run_bad_[k] == 0) {
      const size_t from = nulls ? run_pos_[k] : k;
      if (compact && from != w)
        for (size_t i = 0; i < ninputs; ++i) std::memmove(dst[i] + w * row_bytes_[i], dst[i] + from * row_bytes_[i], row_bytes_[i]);
      for (size_t c : carry_columns_) {
        carried->emplace_back();
        reader.AppendRunCell(c, k, &carried->back());
      }
      decoded->push_back(index);
      ++w;
      continue;
    }
    run_scratch_.resize(ninputs);
    for (size_t i = 0; i < ninputs; ++i) {
      run_scratch_[i].resize(row_bytes_[i]);
      run_dst_[i] = run_scratch_[i].data();
    }
    reader.RunRow(run, k, &run_row_);
    Status s = Decode(run_row_, run_dst_.data(), carried, bytes);
    if (s.ok()) {  // cannot happen: the row failed above for a reason Decode checks
      carried->resize(carried->size() - carry_columns_.size());
      s = Internal("row " + std::to_string(index) + ": decodes alone but not in its run");
    }
    failed->emplace_back(index, s.message());
  }
}

std::string RowDecoder::Describe() const {
  std::string s;
  for (size_t k = 0; k < inputs_.size(); ++k) {
    if (k) s += "; ";
    s += inputs_[k].name + " <- ";
    bool first = true;
    for (size_t c : fed_columns_) {
      if (targets_[c].input != static_cast<int>(k)) continue;
      s += (first ? "" : ", ") + (columns_[c].name.empty() ? std::string("npy rows") : columns_[c].name);
      first = false;
    }
  }
  if (!carry_names_.empty()) {
    s += "; carried:";
    for (const auto& c : carry_names_) s += " " + c;
  }
  return s;
}

Status RowDecoder::Decode(const RawRow& row, char* const* dst, std::vector<std::string>* carried,
                          std::string* const* bytes) {
  switch (format_) {
    case Format::kCsv:
    case Format::kParquet: {
      if (row.csv == nullptr) {
        if (DecodeCsvLine(row.csv_line, dst, carried, bytes)) return Status::Ok();
        // Split it by the full rules, for their checks and messages.
        NextCsvRecord(row.csv_line, 0, &split_);
        RawRow split_row = row;
        split_row.csv = &split_;
        return Decode(split_row, dst, carried, bytes);
      }
      const CsvRecord& r = *row.csv;
      if (!r.error.empty()) return InvalidArgument(RowName(row) + ": " + r.error);
      if (r.cells.size() != columns_.size())
        return InvalidArgument(RowName(row) + ": " + std::to_string(r.cells.size()) + " cells, the header has " +
                               std::to_string(columns_.size()));
      for (size_t c : fed_columns_) {
        const Target& t = targets_[c];
        const ModelInput& in = inputs_[static_cast<size_t>(t.input)];
        const size_t esz = t.element_size;
        if (row.nulls != nullptr && (*row.nulls)[c])
          return InvalidArgument(RowName(row) + ", column '" + columns_[c].name + "': null (a missing value; ferry batch does not fill them in)");
        if (in.datatype == DataType::kBytes) {
          bytes_cells_[static_cast<size_t>(t.input)][t.offset] = r.cells[c];
          continue;
        }
        if (row.typed != nullptr && (*row.typed)[c].data != nullptr) {
          const TypedCell& tc = (*row.typed)[c];
          if (tc.type == in.datatype) {  // the common case: a float column for a float input
            // Sizes the compiler knows: a memcpy of esz bytes is a libc call per cell.
            char* out = dst[t.input] + t.byte_offset;
            if (esz == 4) std::memcpy(out, tc.data, 4);
            else if (esz == 8) std::memcpy(out, tc.data, 8);
            else std::memcpy(out, tc.data, esz);
            continue;
          }
          if (ConvertNpy(tc.type, reinterpret_cast<const char*>(tc.data), in.datatype,
                         dst[t.input] + t.offset * esz))
            continue;
          std::string text;
          AppendElement(tc.type, tc.data, 0, false, &text);
          return InvalidArgument(RowName(row) + ", column '" + columns_[c].name + "': " + Shown(text) + " is not " +
                                 TypeWord(in.datatype));
        }
        if (!ParseElement(in.datatype, r.cells[c], dst[t.input] + t.offset * esz))
          return InvalidArgument(RowName(row) + ", column '" + columns_[c].name + "': " +
                                 (r.cells[c].empty() ? std::string("empty") : Shown(r.cells[c])) + " is not " +
                                 TypeWord(in.datatype));
      }
      for (size_t c : carry_columns_) carried->emplace_back(r.cells[c]);
      AppendBytes(bytes);
      return Status::Ok();
    }
    case Format::kJsonl: {
      rapidjson::Document doc;
      doc.Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseNanAndInfFlag>(row.text.data(), row.text.size());
      if (doc.HasParseError()) return InvalidArgument(RowName(row) + ": not valid JSON");
      if (!doc.IsObject()) return InvalidArgument(RowName(row) + ": not a JSON object");
      for (size_t c : fed_columns_) {
        const Target& t = targets_[c];
        const ModelInput& in = inputs_[static_cast<size_t>(t.input)];
        const size_t esz = DataTypeSize(in.datatype);
        const std::string& name = columns_[c].name;
        auto m = doc.FindMember(rapidjson::StringRef(name.data(), name.size()));
        if (m == doc.MemberEnd()) return InvalidArgument(RowName(row) + ": column '" + name + "' is missing");
        const rapidjson::Value* values = &m->value;
        size_t n = 1;
        if (m->value.IsArray()) {
          n = m->value.Size();
          values = n ? &m->value[0] : nullptr;
        }
        if (n != t.width)
          return InvalidArgument(RowName(row) + ", column '" + name + "': " + std::to_string(n) + " values, expected " +
                                 std::to_string(t.width));
        char* out = dst[t.input] + t.offset * esz;
        for (size_t e = 0; e < n; ++e, out += esz) {
          const rapidjson::Value& v = values[e];
          if (in.datatype == DataType::kBytes) {
            if (!v.IsString())
              return InvalidArgument(RowName(row) + ", column '" + name + "'" +
                                     (t.width > 1 ? " [" + std::to_string(e) + "]" : std::string()) +
                                     ": not a string (input '" + in.name + "' is BYTES)");
            bytes_cells_[static_cast<size_t>(t.input)][t.offset + e] = std::string_view(v.GetString(), v.GetStringLength());
            continue;
          }
          bool ok;
          if (v.IsBool()) ok = in.datatype == DataType::kBool && PutInt64(in.datatype, v.GetBool(), out);
          else if (v.IsInt64()) ok = PutInt64(in.datatype, v.GetInt64(), out);
          else if (v.IsNumber()) ok = PutDouble(in.datatype, v.GetDouble(), out);
          else ok = false;
          if (!ok)
            return InvalidArgument(RowName(row) + ", column '" + name + "'" +
                                   (t.width > 1 ? " [" + std::to_string(e) + "]" : std::string()) + ": not " +
                                   TypeWord(in.datatype));
        }
      }
      const size_t before = carried->size();
      for (size_t c : carry_columns_) {
        const std::string& name = columns_[c].name;
        auto m = doc.FindMember(rapidjson::StringRef(name.data(), name.size()));
        if (m == doc.MemberEnd()) {
          carried->resize(before);
          return InvalidArgument(RowName(row) + ": carried column '" + name + "' is missing");
        }
        rapidjson::StringBuffer sb;
        rapidjson::Writer<rapidjson::StringBuffer> w(sb);
        m->value.Accept(w);
        carried->emplace_back(sb.GetString(), sb.GetSize());
      }
      AppendBytes(bytes);
      return Status::Ok();
    }
    case Format::kNpy: {
      const ModelInput& in = inputs_[0];
      const size_t from = DataTypeSize(npy_type_);
      const size_t to = DataTypeSize(in.datatype);
      if (npy_type_ == in.datatype) {
        std::memcpy(dst[0], row.text.data(), row.text.size());
        return Status::Ok();
      }
      for (size_t e = 0; e < in.width; ++e)
        if (!ConvertNpy(npy_type_, row.text.data() + e * from, in.datatype, dst[0] + e * to))
          return InvalidArgument(RowName(row) + ", element " + std::to_string(e) + ": the value does not fit " +
                                 std::string(DataTypeName(in.datatype)));
      return Status::Ok();
    }
  }
  return Internal("unknown format");
}

}  // namespace ferry::batch
