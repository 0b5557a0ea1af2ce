#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry::engine {

// The routing fields of a serialized request message, read without decoding it.
struct ModelTarget {
  std::string name;     // field 1: ModelInferRequest.model_name, or the `name` of the
                        // ModelMetadata/Ready/Config/Statistics requests
  std::string version;  // field 2
  std::string id;       // field 3 (ModelInferRequest.id; empty for the other messages)
};

// Field names for error messages: they differ between ModelInferRequest (model_name,
// model_version, id) and the per-model metadata requests (name, version).
struct ModelTargetFields {
  std::string_view message;  // "ModelInferRequest"
  std::string_view name;     // "model_name"
  std::string_view version;  // "model_version"
  std::string_view id;       // "id", or empty when field 3 is not a string id
};
inline constexpr ModelTargetFields kInferRequestFields{"ModelInferRequest", "model_name", "model_version", "id"};

// Walks the top-level fields of a protobuf message given as consecutive chunks (the
// slices of a gRPC byte buffer; a field may straddle chunks) and returns fields 1-3 when
// they are length-delimited, the last occurrence winning as in a protobuf parser. Every
// other field is skipped by its wire type without being looked at, so a tensor payload
// is never copied or decoded. A field with a mismatched wire type is skipped as an
// unknown field, as protobuf does.
// Fails with InvalidArgument naming the message, the field and the byte offset when the
// bytes are not a well-formed message: a truncated or overlong varint, a length past the
// end, field number 0, a group (deprecated wire types 3 and 4) or wire types 6 and 7.
// Thread-safety: a pure function.
Result<ModelTarget> ScanModelTarget(std::span<const std::string_view> chunks, const ModelTargetFields& fields);

}  // namespace ferry::engine
