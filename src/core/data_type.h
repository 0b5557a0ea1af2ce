#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace ferry {

// The tensor element types of the Open Inference Protocol. Values follow Triton's
// config DataType enum (TYPE_BOOL = 1 ... TYPE_BF16 = 14) so conversions are a cast.
enum class DataType {
  kInvalid = 0,
  kBool = 1,
  kUint8 = 2,
  kUint16 = 3,
  kUint32 = 4,
  kUint64 = 5,
  kInt8 = 6,
  kInt16 = 7,
  kInt32 = 8,
  kInt64 = 9,
  kFp16 = 10,
  kFp32 = 11,
  kFp64 = 12,
  kBytes = 13,
  kBf16 = 14,
};

// Protocol name: "FP32", "BYTES", ... ("INVALID" for kInvalid).
std::string_view DataTypeName(DataType t);
// Parses a protocol name; nullopt when unknown. Case-sensitive as the protocol is.
std::optional<DataType> DataTypeFromName(std::string_view name);
// Triton config name: "TYPE_FP32", "TYPE_STRING" (for BYTES), ...
std::string_view DataTypeConfigName(DataType t);
std::optional<DataType> DataTypeFromConfigName(std::string_view name);
// Bytes per element; 0 for BYTES (variable) and kInvalid.
size_t DataTypeSize(DataType t);

}  // namespace ferry
