#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace ferry {

// True when `bytes` is exactly `count` BYTES elements in the protocol's serialization
// (each a 4-byte little-endian length, then that many bytes), nothing left over.
inline bool BytesTensorWellFormed(std::string_view bytes, uint64_t count) {
  size_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (bytes.size() - pos < 4) return false;
    uint32_t len;
    std::memcpy(&len, bytes.data() + pos, 4);
    pos += 4;
    if (bytes.size() - pos < len) return false;
    pos += len;
  }
  return pos == bytes.size();
}

}  // namespace ferry
