#include "batch/npy.h"

#include <charconv>
#include <cstring>

namespace ferry::batch {
namespace {

struct Descr {
  const char* code;  // without the byte-order character
  DataType type;
};
constexpr Descr kDescrs[] = {
    {"b1", DataType::kBool},   {"u1", DataType::kUint8},  {"u2", DataType::kUint16}, {"u4", DataType::kUint32},
    {"u8", DataType::kUint64}, {"i1", DataType::kInt8},   {"i2", DataType::kInt16},  {"i4", DataType::kInt32},
    {"i8", DataType::kInt64},  {"f2", DataType::kFp16},   {"f4", DataType::kFp32},   {"f8", DataType::kFp64},
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// The value text after `'key':` in the dict literal, up to the matching delimiter.
Result<std::string_view> DictValue(std::string_view dict, std::string_view key) {
  std::string quoted = "'" + std::string(key) + "'";
  size_t k = dict.find(quoted);
  if (k == std::string_view::npos) return InvalidArgument("npy header: no '" + std::string(key) + "' key");
  size_t colon = dict.find(':', k + quoted.size());
  if (colon == std::string_view::npos) return InvalidArgument("npy header: no value for '" + std::string(key) + "'");
  std::string_view rest = Trim(dict.substr(colon + 1));
  if (rest.empty()) return InvalidArgument("npy header: no value for '" + std::string(key) + "'");
  size_t end;
  if (rest.front() == '(') {
    end = rest.find(')');
    if (end == std::string_view::npos) return InvalidArgument("npy header: unterminated shape tuple");
    return rest.substr(0, end + 1);
  }
  if (rest.front() == '\'' || rest.front() == '"') {
    end = rest.find(rest.front(), 1);
    if (end == std::string_view::npos) return InvalidArgument("npy header: unterminated string for '" + std::string(key) + "'");
    return rest.substr(0, end + 1);
  }
  end = rest.find_first_of(",}");
  return Trim(rest.substr(0, end));
}

}  // namespace

Result<NpyHeader> ParseNpyHeader(std::string_view file) {
  static constexpr char kMagic[] = "\x93NUMPY";
  if (file.size() < 10 || std::memcmp(file.data(), kMagic, 6) != 0)
    return InvalidArgument("npy header: not a .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(file[6]);
  size_t header_len, prefix;
  if (major == 1) {
    header_len = static_cast<unsigned char>(file[8]) | static_cast<unsigned char>(file[9]) << 8;
    prefix = 10;
  } else if (major == 2 || major == 3) {
    if (file.size() < 12) return InvalidArgument("npy header: truncated");
    header_len = 0;
    for (int i = 3; i >= 0; --i) header_len = header_len << 8 | static_cast<unsigned char>(file[8 + i]);
    prefix = 12;
  } else {
    return InvalidArgument("npy header: format version " + std::to_string(major) + " is not supported (1, 2 or 3)");
  }
  if (file.size() < prefix + header_len) return InvalidArgument("npy header: truncated (file shorter than its header)");
  std::string_view dict = file.substr(prefix, header_len);

  NpyHeader h;
  h.data_offset = prefix + header_len;
  FERRY_ASSIGN_OR_RETURN(std::string_view descr, DictValue(dict, "descr"));
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"'))
    return InvalidArgument("npy header: descr must be a simple type string such as '<f4', not " + std::string(descr));
  std::string_view code = descr.substr(1, descr.size() - 2);
  if (code.size() == 3 && (code[0] == '<' || code[0] == '|' || code[0] == '=')) {
    for (const auto& d : kDescrs)
      if (code.substr(1) == d.code) h.datatype = d.type;
  }
  if (h.datatype == DataType::kInvalid)
    return InvalidArgument("npy header: descr '" + std::string(code) +
                           "' is not supported (little-endian bool, int, uint or float, e.g. '<f4')");
  FERRY_ASSIGN_OR_RETURN(std::string_view fortran, DictValue(dict, "fortran_order"));
  if (fortran == "True") return InvalidArgument("npy header: fortran_order True is not supported (save a C-order array)");
  if (fortran != "False") return InvalidArgument("npy header: fortran_order must be True or False, not " + std::string(fortran));
  FERRY_ASSIGN_OR_RETURN(std::string_view shape, DictValue(dict, "shape"));
  if (shape.front() != '(') return InvalidArgument("npy header: shape must be a tuple, not " + std::string(shape));
  std::string_view dims = shape.substr(1, shape.size() - 2);
  while (true) {
    dims = Trim(dims);
    if (dims.empty()) break;
    int64_t d = 0;
    auto [p, ec] = std::from_chars(dims.data(), dims.data() + dims.size(), d);
    if (ec != std::errc() || d < 0) return InvalidArgument("npy header: bad shape " + std::string(shape));
    h.shape.push_back(d);
    dims.remove_prefix(static_cast<size_t>(p - dims.data()));
    dims = Trim(dims);
    if (dims.empty()) break;
    if (dims.front() != ',') return InvalidArgument("npy header: bad shape " + std::string(shape));
    dims.remove_prefix(1);
  }
  if (!ElementCount(h.shape)) return InvalidArgument("npy header: shape " + std::string(shape) + " is too large");
  return h;
}

Result<std::string> FormatNpyHeader(DataType datatype, const Shape& shape, size_t total_bytes) {
  const char* code = nullptr;
  for (const auto& d : kDescrs)
    if (d.type == datatype) code = d.code;
  if (code == nullptr) return InvalidArgument("datatype " + std::string(DataTypeName(datatype)) + " has no .npy type");
  std::string dict = "{'descr': '";
  dict += (datatype == DataType::kBool || datatype == DataType::kUint8 || datatype == DataType::kInt8) ? '|' : '<';
  dict += code;
  dict += "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) dict += ",";
    if (i + 1 < shape.size()) dict += " ";
  }
  dict += "), }";
  if (total_bytes % 64 != 0 || total_bytes < 10 + dict.size() + 1 || total_bytes - 10 > 65535)
    return InvalidArgument("npy header of " + std::to_string(dict.size()) + " bytes does not fit in " +
                           std::to_string(total_bytes));
  dict.resize(total_bytes - 10 - 1, ' ');
  dict += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  out += dict;
  return out;
}

}  // namespace ferry::batch
