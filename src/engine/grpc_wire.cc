#include "engine/grpc_wire.h"

#include <cstdint>

namespace ferry::engine {

namespace {

// Sequential reads over the chunks, with the offset from the start of the message.
class ChunkReader {
 public:
  explicit ChunkReader(std::span<const std::string_view> chunks) : chunks_(chunks) {
    for (auto c : chunks) left_ += c.size();
  }

  uint64_t offset() const { return offset_; }
  uint64_t left() const { return left_; }

  bool Byte(uint8_t* out) {
    while (chunk_ < chunks_.size() && pos_ == chunks_[chunk_].size()) Next();
    if (chunk_ == chunks_.size()) return false;
    *out = static_cast<uint8_t>(chunks_[chunk_][pos_++]);
    ++offset_;
    --left_;
    return true;
  }

  // REQUIRES: n <= left(). Appends the bytes to `out` unless it is null.
  void Take(uint64_t n, std::string* out) {
    offset_ += n;
    left_ -= n;
    while (n > 0) {
      const uint64_t here = std::min<uint64_t>(n, chunks_[chunk_].size() - pos_);
      if (out) out->append(chunks_[chunk_].data() + pos_, here);
      pos_ += here;
      n -= here;
      if (pos_ == chunks_[chunk_].size()) Next();
    }
  }

 private:
  void Next() {
    ++chunk_;
    pos_ = 0;
  }

  std::span<const std::string_view> chunks_;
  size_t chunk_ = 0;
  size_t pos_ = 0;
  uint64_t offset_ = 0;
  uint64_t left_ = 0;
};

enum class VarintError { kNone, kTruncated, kOverlong };

VarintError ReadVarint(ChunkReader& r, uint64_t* value) {
  *value = 0;
  for (int i = 0; i < 10; ++i) {
    uint8_t b;
    if (!r.Byte(&b)) return VarintError::kTruncated;
    *value |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return VarintError::kNone;
  }
  return VarintError::kOverlong;
}

}  // namespace

Result<ModelTarget> ScanModelTarget(std::span<const std::string_view> chunks, const ModelTargetFields& fields) {
  ChunkReader r(chunks);
  ModelTarget target;
  // Built only on failure: the walk itself allocates nothing but the three strings.
  auto fail = [&](uint64_t at, uint64_t number, const std::string& what) -> Status {
    std::string field = "field " + std::to_string(number);
    const std::string_view name = number == 1 ? fields.name
                                  : number == 2 ? fields.version
                                  : number == 3 ? fields.id
                                                : std::string_view();
    if (!name.empty()) field += " (" + std::string(name) + ")";
    return InvalidArgument("malformed " + std::string(fields.message) + ": " + field + " at byte " +
                           std::to_string(at) + ": " + what);
  };
  auto varint_error = [](VarintError e, const char* what) {
    return std::string(e == VarintError::kTruncated ? "truncated " : "overlong ") + what;
  };
  while (r.left() > 0) {
    const uint64_t at = r.offset();
    uint64_t tag;
    if (VarintError e = ReadVarint(r, &tag); e != VarintError::kNone || tag > UINT32_MAX)
      return InvalidArgument("malformed " + std::string(fields.message) + ": " +
                             (e == VarintError::kTruncated ? "truncated" : "overlong") + " field tag at byte " +
                             std::to_string(at));
    const uint64_t number = tag >> 3;
    const int wire_type = static_cast<int>(tag & 7);
    if (number == 0) return fail(at, number, "field numbers start at 1");
    switch (wire_type) {
      case 0: {  // varint
        uint64_t ignored;
        if (VarintError e = ReadVarint(r, &ignored); e != VarintError::kNone)
          return fail(at, number, varint_error(e, "varint"));
        break;
      }
      case 1:    // fixed64
      case 5: {  // fixed32
        const uint64_t n = wire_type == 1 ? 8 : 4;
        if (r.left() < n)
          return fail(at, number, std::to_string(n) + "-byte value runs past the end of the message (" +
                                      std::to_string(r.left()) + " bytes left)");
        r.Take(n, nullptr);
        break;
      }
      case 2: {  // length-delimited
        uint64_t length;
        if (VarintError e = ReadVarint(r, &length); e != VarintError::kNone)
          return fail(at, number, varint_error(e, "length"));
        if (length > r.left())
          return fail(at, number, "length " + std::to_string(length) + " runs past the end of the message (" +
                                      std::to_string(r.left()) + " bytes left)");
        std::string* into = number == 1                       ? &target.name
                            : number == 2                     ? &target.version
                            : number == 3 && !fields.id.empty() ? &target.id
                                                              : nullptr;
        if (into) into->clear();
        r.Take(length, into);
        break;
      }
      case 3:
      case 4:
        return fail(at, number, "groups (wire type " + std::to_string(wire_type) + ") are not part of this message");
      default:
        return fail(at, number, "invalid wire type " + std::to_string(wire_type));
    }
  }
  return target;
}

}  // namespace ferry::engine
